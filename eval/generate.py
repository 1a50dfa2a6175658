"""The answer step: a small protocol with three implementations.

- ``extractive`` (default, no LLM): the passage sentences that share the most words with the query.
- ``transformers``: a local causal LM through its chat template, GGUF files included (``gguf_file=``).
- ``openai``: any OpenAI-compatible chat endpoint (vLLM, llama.cpp's server, Ollama, ...).

Every generator returns a ``Generation`` with the prompt-token count, so reports can show what each
reranker costs in LLM input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from rerankforge.eval.answers import normalize_answer
from rerankforge.eval.config import GenerateConfig

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CITATION = re.compile(r"\[\d+\]")


@dataclass
class Generation:
    answer: str
    prompt_tokens: int
    citations: list[int] = field(default_factory=list)  # 1-based passage numbers the answer cites


class Generator(Protocol):
    def generate(self, query: str, passages: Sequence[str]) -> Generation:
        """Answer ``query`` from ``passages`` (best first; cited as [1], [2], ...)."""


def build_prompt(cfg: GenerateConfig, query: str, passages: Sequence[str]) -> str:
    """``cfg.prompt`` with ``{passages}`` as numbered blocks ``[i] text`` (each cut to ``max_passage_chars``)."""
    blocks = "\n\n".join(f"[{i}] {p[:cfg.max_passage_chars]}" for i, p in enumerate(passages, start=1))
    return cfg.prompt.format(query=query, passages=blocks)


def answer_text(answer: str) -> str:
    """The answer without citation markers: what exact match and F1 are computed on."""
    return " ".join(_CITATION.sub(" ", answer).split())


def cited(answer: str) -> list[int]:
    return sorted({int(m[1:-1]) for m in _CITATION.findall(answer)})


class TokenCounter:
    """Counts prompt tokens with a Hugging Face tokenizer (resolved local → cache → bundle → Hub)."""

    def __init__(self, reference: str, gguf_file: str | None = None):
        from rerankforge.models.loading import load_tokenizer

        self.tokenizer = load_tokenizer(reference, gguf_file)

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class ExtractiveGenerator:
    """Returns the ``cfg.sentences`` sentences of the passages with the largest word overlap with the query."""

    def __init__(self, cfg: GenerateConfig):
        self.cfg = cfg
        self.count = TokenCounter(cfg.token_counter)

    def generate(self, query: str, passages: Sequence[str]) -> Generation:
        words = set(normalize_answer(query).split())
        scored = []
        for number, passage in enumerate(passages, start=1):
            for position, sentence in enumerate(_SENTENCE_END.split(passage[:self.cfg.max_passage_chars])):
                overlap = len(words & set(normalize_answer(sentence).split()))
                if overlap and sentence.strip():
                    scored.append((-overlap, number, position, sentence.strip()))
        best = sorted(scored)[: self.cfg.sentences]
        answer = " ".join(f"{s} [{n}]" for _, n, _, s in best)
        return Generation(answer, self.count(build_prompt(self.cfg, query, passages)), cited(answer))


class TransformersGenerator:
    """A local causal LM, greedy by default, prompted through its chat template."""

    def __init__(self, cfg: GenerateConfig, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        from rerankforge.models.loading import load_tokenizer
        from rerankforge.models.resolve import resolve_model

        self.cfg = cfg
        path = resolve_model(cfg.model).path
        self.tokenizer = load_tokenizer(cfg.model, cfg.gguf_file)
        kwargs = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(self.device).eval()

    def generate(self, query: str, passages: Sequence[str]) -> Generation:
        import torch

        messages = [{"role": "user", "content": build_prompt(self.cfg, query, passages)}]
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True).to(self.device)
        sampling = {"do_sample": True, "temperature": self.cfg.temperature} if self.cfg.temperature > 0 else \
            {"do_sample": False}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                                      **sampling)
        prompt_tokens = inputs["input_ids"].shape[1]
        answer = self.tokenizer.decode(out[0, prompt_tokens:], skip_special_tokens=True).strip()
        return Generation(answer, prompt_tokens, cited(answer))


class OpenAIGenerator:
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint; the key comes from ``cfg.api_key_env``.

    Local servers (llama.cpp, vLLM, Ollama) accept any key, so a missing variable sends a placeholder.
    """

    def __init__(self, cfg: GenerateConfig):
        from rerankforge.utils.extras import require

        openai = require("openai", "generate.kind=openai")
        self.cfg = cfg
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "not-set",
                                    timeout=cfg.timeout_s, max_retries=1)
        self.count = None

    def generate(self, query: str, passages: Sequence[str]) -> Generation:
        prompt = build_prompt(self.cfg, query, passages)
        response = self.client.chat.completions.create(
            model=self.cfg.model, messages=[{"role": "user", "content": prompt}],
            max_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature)
        answer = (response.choices[0].message.content or "").strip()
        usage = getattr(response, "usage", None)
        if usage is not None and usage.prompt_tokens:
            tokens = usage.prompt_tokens
        else:  # some servers omit usage: count with the configured tokenizer
            self.count = self.count or TokenCounter(self.cfg.token_counter)
            tokens = self.count(prompt)
        return Generation(answer, tokens, cited(answer))


def load_generator(cfg: GenerateConfig, device: str | None = None) -> Generator | None:
    """The generator ``cfg.kind`` names, or None for ``kind: none``."""
    if cfg.kind == "none":
        return None
    if cfg.kind == "extractive":
        return ExtractiveGenerator(cfg)
    if cfg.kind == "transformers":
        return TransformersGenerator(cfg, device)
    return OpenAIGenerator(cfg)

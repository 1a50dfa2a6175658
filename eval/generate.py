"""The answer step: a small protocol with two implementations.

- ``extractive`` (default, no LLM): the passage sentences that share the most words with the query.
- ``LLMGenerator``: an LLM client from ``models/llm.py`` (``transformers``, GGUF files included; ``llama_cpp``;
  ``openai``: any OpenAI-compatible chat endpoint such as vLLM, llama.cpp's server or Ollama).

Every generator returns a ``Generation`` with the prompt-token count, so reports can show what each
reranker costs in LLM input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import rerankforge.models.llm as llm_clients
from rerankforge.eval.answers import normalize_answer
from rerankforge.eval.config import GenerateConfig
from rerankforge.models.loading import load_tokenizer

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


def passage_blocks(cfg: GenerateConfig, passages: Sequence[str]) -> list[str]:
    """The numbered blocks ``[i] text`` (each cut to ``max_passage_chars``) that ``{passages}`` holds, each but the
    first with the blank line that separates it from the one before: their concatenation is ``{passages}``."""
    return [("\n\n" if i > 1 else "") + f"[{i}] {p[:cfg.max_passage_chars]}" for i, p in enumerate(passages, start=1)]


def build_prompt(cfg: GenerateConfig, query: str, passages: Sequence[str]) -> str:
    """``cfg.prompt`` with ``{passages}`` as numbered blocks ``[i] text`` (each cut to ``max_passage_chars``)."""
    return cfg.prompt.format(query=query, passages="".join(passage_blocks(cfg, passages)))


def answer_text(answer: str) -> str:
    """The answer without citation markers: what exact match and F1 are computed on."""
    return " ".join(_CITATION.sub(" ", answer).split())


def cited(answer: str) -> list[int]:
    return sorted({int(m[1:-1]) for m in _CITATION.findall(answer)})


class TokenCounter:
    """Counts prompt tokens with a Hugging Face tokenizer (resolved local → cache → bundle → Hub)."""

    def __init__(self, reference: str, gguf_file: str | None = None):
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

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as this generator counts its prompt."""
        return self.count(text)


class LLMGenerator:
    """An LLM client (``models/llm.py``: transformers, llama.cpp or an OpenAI-compatible endpoint) answering
    ``cfg.prompt``; prompt tokens are the backend's count, else counted with ``cfg.token_counter``."""

    def __init__(self, cfg: GenerateConfig, device: str | None = None):
        self.cfg = cfg
        self.llm = llm_clients.load_llm(cfg, device)
        self.count = None

    def generate(self, query: str, passages: Sequence[str]) -> Generation:
        prompt = build_prompt(self.cfg, query, passages)
        completion = self.llm.complete([prompt])[0]
        tokens = completion.prompt_tokens
        if tokens is None:  # some servers omit usage
            self.count = self.count or TokenCounter(self.cfg.token_counter)
            tokens = self.count(prompt)
        return Generation(completion.text, tokens, cited(completion.text))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``: the LLM's own tokenizer when it has one (transformers), else ``cfg.token_counter``."""
        tokenizer = getattr(self.llm, "tokenizer", None)
        if tokenizer is not None:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])
        self.count = self.count or TokenCounter(self.cfg.token_counter)
        return self.count(text)


def load_generator(cfg: GenerateConfig, device: str | None = None) -> Generator | None:
    """The generator ``cfg.kind`` names, or None for ``kind: none``."""
    if cfg.kind == "none":
        return None
    if cfg.kind == "extractive":
        return ExtractiveGenerator(cfg)
    return LLMGenerator(cfg, device)

"""An LLM as a reranker ("LLM as judge"): scores for eval's ``kind: llm`` rows, mining's teacher and its
false-negative filter.

    judge = Judge(JudgeConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF))
    logits = judge.score("what lowers blood pressure?", passages, raw=True)

- ``mode=pointwise``: one call per passage; the score is log P("yes") - log P("no") of the reply's first token
  (monoT5 / Qwen3-Reranker style), so ``sigmoid(score)`` is the judge's P(relevant).
- ``mode=listwise``: RankGPT's sliding windows; each call orders ``window`` passages, and a passage's score is its
  final place (n for first, down to 1).

Any client of ``models/llm.py`` answers: transformers (GGUF too), llama.cpp, or an OpenAI-compatible endpoint
(log-probabilities where it gives them, the reply's text where it does not). Every finished call is appended to a
journal keyed by the hash of what was asked, so a rerun, or a run killed half way, asks nothing twice. A call that
times out, fails on the server or gives an unparseable answer is retried ``retries`` times, then counted and left
unscored: those passages rank below the judged ones, in the order given. No failure stops the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from rerankforge.core.io import resolve_cache_dir
from rerankforge.models.calibration import sigmoid
from rerankforge.models.judge_parse import (
    JudgeParseError,
    listwise_scores,
    parse_permutation,
    sliding_windows,
    yes_no_logit,
)
from rerankforge.models.llm import LLMConfig, check_llm_config, load_llm, resolved_kind

logger = logging.getLogger(__name__)

POINTWISE_PROMPT = (
    "Does the passage answer the query? Answer yes or no.\n\nQuery: {query}\n\nPassage: {passage}\n\n"
    "Does the passage answer the query? Answer yes or no."
)
LISTWISE_PROMPT = (
    "Below are {n} passages, each with an id in brackets. Rank them by how well they answer the query.\n\n"
    "Query: {query}\n\n{passages}\n\nQuery: {query}\n\nRank the {n} passages above, most relevant first. Reply with "
    "the ids only, like [2] > [1] > [3]."
)
FAILURES = ("timeout", "server_error", "unparseable", "other")


@dataclass
class JudgeConfig(LLMConfig):
    """An LLM judge: the keys of ``LLMConfig`` (which model answers, and how) plus how it is asked."""

    mode: Literal["pointwise", "listwise"] = "pointwise"  # yes/no per passage, or RankGPT permutations
    max_new_tokens: int = 128  # listwise: the longest permutation reply, in tokens (pointwise reads one token)
    # pointwise prompt; fields {query} and {passage}
    pointwise_prompt: str = POINTWISE_PROMPT
    # listwise prompt; fields {query}, {passages} (numbered blocks "[i] text") and {n} (how many)
    listwise_prompt: str = LISTWISE_PROMPT
    window: int = 20  # listwise: passages per call
    step: int = 10  # listwise: how far each window moves up the list
    max_passage_words: int = 150  # each passage is cut to this many words in the prompt (listwise: a third of it)
    top_logprobs: int = 20  # pointwise: how many of the likeliest first tokens to ask the backend for
    retries: int = 2  # a failed call (timeout, server error, unparseable answer) is asked again this many times
    # USD per million prompt tokens, for the report's cost per 1,000 queries (0: a local model)
    price_per_million_prompt_tokens: float = 0.0
    price_per_million_completion_tokens: float = 0.0  # USD per million completion tokens (0: a local model)
    # the journal of finished calls (JSONL, keyed by content hash); null: <cache_dir>/judge/<model hash>.jsonl
    journal: Optional[str] = None


def check_judge_config(cfg: JudgeConfig, key: str) -> list[str]:
    """Problems with ``cfg`` (``key``: its place in the config), all at once."""
    problems = check_llm_config(cfg, key)
    prompt, fields = ((cfg.pointwise_prompt, ("{query}", "{passage}")) if cfg.mode == "pointwise"
                      else (cfg.listwise_prompt, ("{query}", "{passages}")))
    problems += [f"{key}.{cfg.mode}_prompt must contain {name}; got {prompt[:80]!r}." for name in fields
                 if name not in prompt]
    if cfg.mode == "listwise" and not 1 <= cfg.step < cfg.window:
        problems.append(f"{key}: listwise needs 1 <= step < window, got step={cfg.step} and window={cfg.window}.")
    if cfg.retries < 0 or cfg.max_passage_words < 1 or cfg.top_logprobs < 1:
        problems.append(f"{key}: retries must be >= 0 and max_passage_words, top_logprobs >= 1; got {cfg.retries}, "
                        f"{cfg.max_passage_words}, {cfg.top_logprobs}.")
    return problems


def judge_id(cfg: JudgeConfig) -> str:
    """What makes two judges' answers interchangeable: backend, model and mode (prompts are in each call's key)."""
    return json.dumps([resolved_kind(cfg), cfg.model, cfg.gguf_file, cfg.base_url, cfg.mode], sort_keys=True)


class JudgeJournal:
    """Finished calls, appended to a JSONL file as they finish: ``{"key": sha256 of the call, "value": ...}``.

    A kill can cut only the last line, which loading skips; a line that is not JSON is skipped the same way."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self.done[record["key"]] = record["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
            with open(self.path, "rb+") as f:  # start appends on a fresh line after a cut one
                f.seek(0, os.SEEK_END)
                if f.tell() and (f.seek(-1, os.SEEK_END) or f.read(1) != b"\n"):
                    f.write(b"\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, value: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[key] = value


@dataclass
class JudgeUsage:
    """What the judge has done so far; eval reads the change over each query."""

    calls: int = 0  # calls answered by the model (retries included)
    cached: int = 0  # calls answered from the journal
    prompt_tokens: int = 0  # of every answer used, from the journal too (what the answers cost when asked)
    completion_tokens: int = 0
    retries: int = 0
    failures: Counter = field(default_factory=lambda: Counter({kind: 0 for kind in FAILURES}))
    last_error: str = ""

    def as_dict(self) -> dict:
        return {"calls": self.calls, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "retries": self.retries,
                "failures": dict(self.failures), "last_error": self.last_error}


def failure_kind(exc: Exception) -> str:
    """timeout, server_error, unparseable or other: how the report counts a failed call."""
    if isinstance(exc, JudgeParseError):
        return "unparseable"
    name = type(exc).__name__.lower()
    if "timeout" in name or isinstance(exc, TimeoutError):
        return "timeout"
    status = getattr(exc, "status_code", None)
    if (status is not None and status >= 500) or "internalserver" in name or "apiconnection" in name:
        return "server_error"
    return "other"


def cut_words(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


class Judge:
    """An LLM that scores passages for a query (see the module docstring); ``score`` is what eval's pipeline and
    mining call, like ``Reranker.score``.

    Args:
        cfg: the judge.
        cache_dir: where the default journal goes (``<cache_dir>/judge/<hash>.jsonl``; default rerankforge's
            cache folder, ``RERANKFORGE_CACHE`` or ~/.cache/rerankforge); ignored when ``cfg.journal`` is set.
        llm: an LLM client to use instead of loading ``cfg``'s (tests).
    """

    def __init__(self, cfg: JudgeConfig, cache_dir: Optional[Path] = None, llm=None):
        self.cfg = cfg
        self.llm = llm if llm is not None else load_llm(cfg)
        name = f"{hashlib.sha256(judge_id(cfg).encode()).hexdigest()[:16]}.jsonl"
        default = (Path(cache_dir) if cache_dir else resolve_cache_dir(None)) / "judge" / name
        self.journal = JudgeJournal(Path(cfg.journal) if cfg.journal else default)
        self.usage = JudgeUsage()

    def probability(self, logit: float) -> float:
        """P(relevant) of a pointwise score (its sigmoid); listwise scores are places, not log-odds."""
        return sigmoid(logit)

    def score(self, query: str, docs: Sequence[str], raw: bool = False) -> list[float]:
        """One score per doc, in the order given: pointwise log-odds (their sigmoid without ``raw``) or listwise
        places. Docs whose calls failed score below every judged one, in the order given."""
        if not docs:
            return []
        if self.cfg.mode == "listwise":
            return self._listwise(query, list(docs))
        logits = self._pointwise(query, list(docs))
        judged = [x for x in logits if x is not None]
        floor = (min(judged) if judged else 0.0) - 1.0
        logits = [x if x is not None else floor - i * 1e-3 for i, x in enumerate(logits)]
        return logits if raw else [sigmoid(x) for x in logits]

    def _key(self, prompt: str, kind: str) -> str:
        return hashlib.sha256(json.dumps([judge_id(self.cfg), kind, prompt]).encode("utf-8")).hexdigest()

    def _ask(self, prompt: str, kind: str, shown: int = 1) -> Optional[dict]:
        """The journal's answer to ``prompt``, or the model's (journalled), or None after ``retries`` failures."""
        key = self._key(prompt, kind)
        if key in self.journal.done:
            self.usage.cached += 1
            return self._counted(self.journal.done[key])
        for attempt in range(self.cfg.retries + 1):
            self.usage.calls += 1
            self.usage.retries += attempt > 0
            try:
                value = self._call(prompt, kind, shown)
            except Exception as exc:  # a timeout, a 500, garbage: counted, retried, never fatal
                self.usage.last_error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                if attempt == self.cfg.retries:
                    self.usage.failures[failure_kind(exc)] += 1
                    logger.warning("LLM judge call failed %d times (%s); its passages stay unscored.",
                                   attempt + 1, self.usage.last_error)
                continue
            self.journal.add(key, value)
            return self._counted(value)
        return None

    def _counted(self, value: dict) -> dict:
        """``value``, its tokens added to the usage: an answer from the journal costs what it cost when asked."""
        self.usage.prompt_tokens += value.get("prompt_tokens") or 0
        self.usage.completion_tokens += value.get("completion_tokens") or 0
        return value

    def _batch(self, prompts: list[str]) -> int:
        """Journal the pointwise answers of ``prompts`` in one batched call (transformers pads a batch); any
        failure leaves the prompts concerned to ``_ask``, which retries them one by one. Returns how many were
        journalled."""
        try:
            tokens = self.llm.next_token(prompts, top=self.cfg.top_logprobs)
        except Exception:  # the one-by-one path counts and retries it
            return 0
        self.usage.calls += len(prompts)
        answered = 0
        for prompt, token in zip(prompts, tokens):
            try:
                self.journal.add(self._key(prompt, "pointwise"), {"logit": yes_no_logit(token.logprobs, token.text),
                                                                  "prompt_tokens": token.prompt_tokens,
                                                                  "completion_tokens": 1})
                answered += 1
            except JudgeParseError:
                continue
        return answered

    def _call(self, prompt: str, kind: str, shown: int) -> dict:
        if kind == "pointwise":
            token = self.llm.next_token([prompt], top=self.cfg.top_logprobs)[0]
            return {"logit": yes_no_logit(token.logprobs, token.text), "prompt_tokens": token.prompt_tokens,
                    "completion_tokens": 1}
        completion = self.llm.complete([prompt])[0]
        return {"text": completion.text, "order": parse_permutation(completion.text, shown),
                "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}

    def _pointwise(self, query: str, docs: list[str]) -> list[Optional[float]]:
        words = self.cfg.max_passage_words
        prompts = [self.cfg.pointwise_prompt.format(query=query, passage=cut_words(doc, words)) for doc in docs]
        answered = 0
        if resolved_kind(self.cfg) == "transformers":
            todo = list(dict.fromkeys(p for p in prompts if self._key(p, "pointwise") not in self.journal.done))
            answered = sum(self._batch(todo[start:start + self.cfg.batch_size])
                           for start in range(0, len(todo), self.cfg.batch_size))
        answers = [self._ask(prompt, "pointwise") for prompt in prompts]
        self.usage.cached -= answered  # journalled by this call's batches, not by an earlier run
        return [None if a is None else float(a["logit"]) for a in answers]

    def _listwise(self, query: str, docs: list[str]) -> list[float]:
        order = list(range(len(docs)))  # the current ranking: indices into docs, best first
        words = max(1, self.cfg.max_passage_words // 3)
        for start, end in sliding_windows(len(docs), self.cfg.window, self.cfg.step):
            shown = order[start:end]
            blocks = "\n".join(f"[{i + 1}] {cut_words(docs[d], words)}" for i, d in enumerate(shown))
            prompt = self.cfg.listwise_prompt.format(query=query, passages=blocks, n=len(shown))
            answer = self._ask(prompt, "listwise", len(shown))
            if answer is not None:  # a failed window keeps its order
                order[start:end] = [shown[i] for i in answer["order"] if i < len(shown)]
        return listwise_scores(order)

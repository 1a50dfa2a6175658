"""Query generation that survives Ctrl-C and SIGKILL: every finished passage is appended to ``generated.jsonl``.

The journal's first line holds the key of what made the generations (generator, prompt, inputs); each following
line is one passage, ``{"doc_id", "outputs": [{"text", "prompt_tokens", "completion_tokens"}]}`` or, when the
generator failed on it, ``{"doc_id", "error"}`` (retried by the next run). A kill can cut only the last line,
which the next run drops: at most the passages in flight (one LLM call) are lost.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from tqdm.auto import tqdm

from rerankforge.core.problems import DataError, Problem

logger = logging.getLogger(__name__)


class Journal:
    """The append-only record of generations in ``path``; ``done`` maps doc id → its finished record."""

    def __init__(self, path: Path, key: str):
        self.path, self.key, self.done = Path(path), key, {}
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._append([{"key": key}])
            return
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):  # a kill mid-write: drop the cut line so appends start on a fresh one
            raw = raw[: raw.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(raw))
        lines = raw.decode("utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get("key") != key:
            raise DataError([Problem(
                "it holds generations made with another generator, prompt, corpus or seed than this config's. Use "
                "a new output_dir, or delete the file to start over.", str(self.path), 1)])
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataError([Problem("not valid JSON; the journal was edited by hand? Delete the line (that "
                                         "passage is generated again).", str(self.path), number)]) from None
            if "outputs" in record:
                self.done[record["doc_id"]] = record

    def _append(self, records: list[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def add(self, records: list[dict]) -> None:
        self._append(records)
        self.done.update((r["doc_id"], r) for r in records if "outputs" in r)


@dataclass
class GenerationRun:
    """What one run generated (passages reused from the journal are not timed)."""

    sample: list[str]
    generated: int = 0
    reused: int = 0
    errors: int = 0
    last_error: str = ""
    seconds: float = 0.0
    queries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def speed(self) -> dict:
        per_s = (lambda n: round(n / self.seconds, 2) if self.seconds else None)
        return {"seconds_generating": round(self.seconds, 1), "queries_per_s": per_s(self.queries),
                "prompt_tokens_per_s": per_s(self.prompt_tokens),
                "completion_tokens_per_s": per_s(self.completion_tokens)}


def _one_call(llm, doc_ids: Sequence[str], prompts: dict[str, str], per_passage: int,
              extra_temperature: Optional[float] = None) -> list[dict]:
    """``per_passage`` completions of each passage's prompt in one journal record each. With ``extra_temperature``
    the first is asked as the generator is configured and the others at that temperature (a greedy generator
    would only repeat the first)."""
    asked = [prompts[d] for d in doc_ids for _ in range(per_passage)]
    if extra_temperature is None or per_passage == 1:
        completions = llm.complete(asked)
    else:
        firsts = llm.complete([prompts[d] for d in doc_ids])
        others = llm.complete([prompts[d] for d in doc_ids for _ in range(per_passage - 1)],
                              temperature=extra_temperature)
        if len(firsts) != len(doc_ids) or len(others) != len(doc_ids) * (per_passage - 1):
            raise ValueError(f"the generator returned {len(firsts) + len(others)} completions for {len(asked)} prompts")
        completions = [c for i in range(len(doc_ids))
                       for c in [firsts[i], *others[i * (per_passage - 1):(i + 1) * (per_passage - 1)]]]
    if len(completions) != len(asked):
        raise ValueError(f"the generator returned {len(completions)} completions for {len(asked)} prompts")
    return [{"doc_id": d, "outputs": [{"text": c.text, "prompt_tokens": c.prompt_tokens,
                                       "completion_tokens": c.completion_tokens}
                                      for c in completions[i * per_passage:(i + 1) * per_passage]]}
            for i, d in enumerate(doc_ids)]


def generate_missing(llm, prompts: dict[str, str], journal: Journal, cfg) -> GenerationRun:
    """Generate for every passage of ``prompts`` (doc id → prompt, in order) not yet in ``journal``.

    ``llm.batch_size`` passages go to one call (1 when it has none). A failing call counts one error per passage
    in it and is not fatal; generation stops once more than ``cfg.max_errors`` errors were counted."""
    run = GenerationRun(sample=list(prompts))
    # longest prompts first: a batch of similar lengths wastes little on padding
    todo = sorted((d for d in prompts if d not in journal.done), key=lambda d: -len(prompts[d]))
    run.reused = len(prompts) - len(todo)
    step = max(1, int(getattr(llm, "batch_size", 1) or 1))
    bar = tqdm(total=len(todo), unit="passage", desc="Generating queries", disable=not todo)
    for start in range(0, len(todo), step):
        batch = todo[start:start + step]
        began = time.perf_counter()
        try:
            records = _one_call(llm, batch, prompts, cfg.queries_per_passage,
                                None if cfg.generator.temperature > 0 else cfg.extra_temperature)
        except Exception as exc:  # an endpoint's 500, a timeout, garbage JSON: counted, retried next run
            run.errors += len(batch)
            run.last_error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            logger.warning("Generator error on %d passage(s) (%d so far, max_errors=%d): %s", len(batch), run.errors,
                           cfg.max_errors, run.last_error)
            journal.add([{"doc_id": d, "error": run.last_error} for d in batch])
            if run.errors > cfg.max_errors:
                break
            bar.update(len(batch))
            continue
        run.seconds += time.perf_counter() - began
        journal.add(records)
        outputs = [o for r in records for o in r["outputs"]]
        run.generated += len(records)
        run.queries += len(outputs)
        run.prompt_tokens += sum(o["prompt_tokens"] or 0 for o in outputs)
        run.completion_tokens += sum(o["completion_tokens"] or 0 for o in outputs)
        bar.update(len(batch))
        bar.set_postfix(queries_per_s=f"{run.queries / max(run.seconds, 1e-9):.2f}", errors=run.errors, refresh=False)
    bar.close()
    return run

"""``rerankforge synth``: generate queries for a corpus with an LLM, keep the consistent ones, write a label set.

    rerankforge synth --config configs/data_prep/scifact-synth.yaml

Steps: check the config and the corpus, sample passages (seeded), generate ``queries_per_passage`` queries for
each with the LLM (appending every result to ``generated.jsonl`` as it is made, so a rerun skips passages already
done), parse and filter them (``synth_filters.py``: empty, truncated, too short or long, copied from the passage,
duplicate, failed round trip through the first stage, ambiguous), then write a BEIR-layout label set::

    output_dir/queries.jsonl      {"_id": "synth-<doc_id>-<i>", "text": ..., "metadata": {"passage": <doc_id>}}
    output_dir/qrels/train.tsv    query-id, corpus-id, score (and qrels/dev.tsv with dev_fraction)
    output_dir/manifest.json      generator, prompt, counts kept and dropped by reason, tokens/s, time
    output_dir/generated.jsonl    every raw generation (the resume journal)

Mining reads it like any label set: ``data.path=<corpus folder> data.queries=<out>/queries.jsonl
data.qrels=<out>/qrels/train.tsv``. Each corpus entry is one passage (a text folder is chunked as mining does).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

import rerankforge.models.llm as llm_clients
from rerankforge.core.config import dump_yaml, to_dict
from rerankforge.core.dev_split import carve_dev
from rerankforge.core.errors import RerankforgeError
from rerankforge.core.io import (
    MANIFEST,
    git_commit,
    hash_path,
    hash_strings,
    resolve_cache_dir,
    versions,
    write_json,
    write_jsonl_atomic,
    write_qrels_atomic,
)
from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.config import SynthConfig, check_synth_config
from rerankforge.data_prep.synth_filters import (
    DROP_REASONS,
    QueryLimits,
    ambiguous,
    check_query,
    first_occurrences,
    parse_query,
    round_trip,
)
from rerankforge.data_prep.synth_journal import Journal, generate_missing
from rerankforge.models.llm import resolved_kind
from rerankforge.retrieval.chunking import folder_spans
from rerankforge.retrieval.corpus_store import corpus_ids, corpus_texts
from rerankforge.retrieval.first_stage import FirstStage
from rerankforge.retrieval.loaders import (
    Corpus,
    load_corpus_any,
    load_qrels,
    load_queries,
    load_query_texts,
    resolve_paths,
)

logger = logging.getLogger(__name__)
_SYNTH_ID = re.compile(r"^synth-(.+)-(\d+)$")


class SynthError(RerankforgeError, RuntimeError):
    """Generation stopped (the error budget is spent); every finished passage is kept in ``generated.jsonl``."""


def synthetic_query_id(doc_id: str, i: int) -> str:
    """The id of the ``i``-th kept query asked of passage ``doc_id``: ``synth-<doc_id>-<i>``."""
    return f"synth-{doc_id}-{i}"


def synthetic_passage(query_id: str) -> Optional[str]:
    """The passage a synthetic query (``synthetic_query_id``) was asked of; None for other ids."""
    match = _SYNTH_ID.match(query_id)
    return match.group(1) if match else None


def load_corpus_for_synth(cfg: SynthConfig) -> tuple[Corpus, dict[str, str]]:
    """The corpus and the files read, after the checks ``rerankforge synth`` starts with.

    Raises:
        DataError: config problems, a missing file, malformed lines (all at once)."""
    problems = [Problem(p) for p in check_synth_config(cfg)]
    if problems:
        raise DataError(problems)
    paths = resolve_paths(cfg.data)
    wanted = {"corpus": paths["corpus"]}
    if cfg.examples:
        wanted["examples"] = Path(cfg.examples).expanduser()
    if cfg.mix_with:
        wanted.update(queries=paths["queries"], mix_with=Path(cfg.mix_with).expanduser())
    missing = [Problem(f"{name} file not found: {p}", str(p)) for name, p in wanted.items() if p and not p.exists()]
    if missing:
        raise DataError(missing)
    spans = folder_spans(paths["corpus"], cfg.data, cfg.first_stage.encoder.name_or_path)
    corpus = load_corpus_any(paths["corpus"], cfg.data, problems, spans, resolve_cache_dir(cfg.cache_dir))
    if not corpus and not problems:
        problems.append(Problem("the corpus is empty: nothing to generate queries for.", str(paths["corpus"])))
    if problems:
        raise DataError(problems)
    return corpus, {name: str(p) for name, p in wanted.items() if p}


def sample_passages(corpus: Corpus, cfg: SynthConfig) -> list[str]:
    """A seeded sample of ``cfg.passages`` doc ids with at least ``min_passage_words`` words (all when null)."""
    eligible = sorted(d for d, doc in corpus.items() if len(doc.get("text", "").split()) >= cfg.min_passage_words)
    if cfg.passages is None or cfg.passages >= len(eligible):
        return eligible
    return sorted(random.Random(f"synth:{cfg.seed}").sample(eligible, cfg.passages))


def questions_per_passage(cfg: SynthConfig, sampled: int) -> int:
    """``queries_per_passage``, raised towards ``passages`` questions in all when fewer passages could be sampled
    (a small corpus), to at most ``max_queries_per_passage``."""
    if cfg.passages is None or not 0 < sampled < cfg.passages:
        return cfg.queries_per_passage
    return max(cfg.queries_per_passage, min(cfg.max_queries_per_passage, cfg.passages // sampled))


def load_examples(cfg: SynthConfig) -> list[str]:
    """Up to ``num_examples`` of the user's queries (seeded): a BEIR queries .jsonl, or a .txt with one per line."""
    if not cfg.examples:
        return []
    texts = load_query_texts(cfg.examples, cfg.data.fields)
    return random.Random(f"examples:{cfg.seed}").sample(texts, min(cfg.num_examples, len(texts)))


def examples_block(examples: list[str]) -> str:
    if not examples:
        return ""
    return "Examples of what people search these documents for:\n" + "".join(f"- {e}\n" for e in examples) + "\n"


def passage_window(words: list[str], size: int, window: str, rng: random.Random) -> list[str]:
    """``size`` consecutive words of ``words``: its opening (``start``), or one starting at a sentence start drawn
    uniformly among those that leave a full window (``random``; the opening when none does)."""
    if window == "start" or len(words) <= size:
        return words[:size]
    starts = [i for i in range(1, len(words) - size + 1) if words[i - 1].endswith((".", "?", "!"))]
    return words[rng.choice([0] + starts):][:size]


def build_prompt(cfg: SynthConfig, doc_id: str, doc: dict[str, str], examples: str) -> str:
    """``cfg.prompt`` filled with the passage (a window of ``max_passage_words``, ``passage_window``) and the
    examples block."""
    rng = random.Random(f"window:{cfg.seed}:{doc_id}")
    text = " ".join(passage_window(doc.get("text", "").split(), cfg.max_passage_words, cfg.passage_window, rng))
    return cfg.prompt.format(title=doc.get("title", "").strip() or "Untitled", text=text, examples=examples)


def journal_key(cfg: SynthConfig, corpus_sha: str, examples: str) -> str:
    """What makes generations comparable: the generator, the prompt and its inputs (not batch size or threads)."""
    g = cfg.generator
    return hash_strings([g.model or "", g.gguf_file or "", g.base_url or "", str(g.max_new_tokens),
                         str(g.temperature), cfg.prompt, examples, str(cfg.max_passage_words),
                         str(cfg.queries_per_passage), str(cfg.seed), corpus_sha]
                        # only a non-default window enters the key: journals of configs without the option resume
                        + ([] if cfg.passage_window == "start" else [cfg.passage_window])
                        + ([str(cfg.extra_temperature)] if cfg.queries_per_passage > 1 and g.temperature <= 0 else []))


def filter_generated(cfg: SynthConfig, corpus: Corpus, records: dict[str, dict], stage) -> tuple[list[tuple[str, str]], Counter]:
    """Kept ``(query, doc_id)`` pairs (in sample order) and the drop counts by reason (``synth_filters.py``).

    ``stage`` is a ``FirstStage`` over the whole corpus for the round trip (None: no round trip)."""
    limits = QueryLimits(cfg.filters.min_words, cfg.filters.max_words, cfg.filters.max_copied_fraction)
    dropped: Counter = Counter({reason: 0 for reason in DROP_REASONS})
    candidates: list[tuple[str, str]] = []
    for doc_id, record in records.items():
        for output in record["outputs"]:
            hit_limit = (output.get("completion_tokens") or 0) >= cfg.generator.max_new_tokens
            query, reason = parse_query(output["text"], hit_limit)
            reason = reason or check_query(query, corpus[doc_id].get("text", ""), limits)
            if reason:
                dropped[reason] += 1
            else:
                candidates.append((query, doc_id))
    if stage is not None and candidates:  # before duplicates: of a repeated query, the one that finds its passage stays
        reasons = consistency(cfg, stage, candidates)
        dropped.update(r for r in reasons if r)
        candidates = [c for c, reason in zip(candidates, reasons) if not reason]
    firsts = first_occurrences(q for q, _ in candidates)
    dropped["duplicate"] += firsts.count(False)
    candidates = [c for c, first in zip(candidates, firsts) if first]
    return candidates, dropped


def consistency(cfg: SynthConfig, stage, candidates: list[tuple[str, str]]) -> list[Optional[str]]:
    """For each ``(query, doc_id)``: None to keep it, ``round_trip`` when ``stage`` does not rank the passage in
    its top ``round_trip_depth``, or ``ambiguous`` when more than ``max_as_close`` other passages among the
    retrievers' candidates score as high as it (within ``ambiguity_margin``) on each of them (cosine and BM25
    behind hybrid)."""
    depth, method = cfg.filters.round_trip_depth, stage.spec.method
    parts = ["dense", "bm25"] if method == "hybrid" else [method]
    found = stage.search_all([q for q, _ in candidates], depth, list(dict.fromkeys([method, *parts])))
    top = [[stage.doc_ids[r] for r in rows] for rows in found[method].rows]
    found_back = round_trip(top, [d for _, d in candidates], depth)
    reasons: list[Optional[str]] = []
    for i, (_, doc_id) in enumerate(candidates):
        if not found_back[i]:
            reasons.append("round_trip")
            continue
        if cfg.filters.max_as_close is None:
            reasons.append(None)
            continue
        source = int(found[method].rows[i][top[i].index(doc_id)])
        pool = list(dict.fromkeys([source, *(int(r) for m in parts for r in found[m].rows[i])]))
        scores = np.stack([found[m].similarity(i, pool) for m in parts])
        reasons.append("ambiguous" if ambiguous(scores, 0, cfg.filters.max_as_close, cfg.filters.ambiguity_margin)
                       else None)
    return reasons


def round_trip_stage(cfg: SynthConfig, corpus: Corpus):
    if cfg.filters.round_trip_depth == 0:
        return None
    doc_ids = corpus_ids(corpus)
    return FirstStage(cfg.first_stage, corpus_texts(corpus, doc_ids), resolve_cache_dir(cfg.cache_dir), doc_ids=doc_ids)


def synth(cfg: SynthConfig, llm=None) -> Path:
    """Run the whole stage; returns ``cfg.output_dir``. ``llm`` (anything with ``complete``) replaces the
    configured generator (tests, or a client the caller already holds).

    Raises:
        DataError: config or corpus problems, before any generation. SynthError: the error budget is spent.
    """
    corpus, inputs = load_corpus_for_synth(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # present only when the label set below is complete
    examples = examples_block(load_examples(cfg))
    sample = sample_passages(corpus, cfg)
    per_passage = questions_per_passage(cfg, len(sample))
    if per_passage != cfg.queries_per_passage:
        logger.info("%d passages to ask about, fewer than passages=%d: %d questions of each "
                    "(max_queries_per_passage=%d).", len(sample), cfg.passages, per_passage,
                    cfg.max_queries_per_passage)
        cfg = replace(cfg, queries_per_passage=per_passage)
    corpus_sha = hash_path(inputs["corpus"])
    journal = Journal(out / "generated.jsonl", journal_key(cfg, corpus_sha, examples))
    prompts = {d: build_prompt(cfg, d, corpus[d], examples) for d in sample}
    if llm is None and any(d not in journal.done for d in sample):
        llm = llm_clients.load_llm(cfg.generator)
    started = time.perf_counter()
    run = generate_missing(llm, prompts, journal, cfg)
    if run.errors > cfg.max_errors:
        raise SynthError(f"the generator failed {run.errors} times, more than max_errors={cfg.max_errors}; the last "
                         f"error: {run.last_error}. {len(journal.done)} finished passages are kept in "
                         f"{journal.path}; fix the generator (or raise max_errors) and run again to go on.")
    records = {d: journal.done[d] for d in sample if d in journal.done}
    kept, dropped = filter_generated(cfg, corpus, records, round_trip_stage(cfg, corpus))
    dropped["generator_error"] = sum(1 for d in sample if d not in journal.done)
    return write_label_set(cfg, corpus, kept, dropped, run, inputs, examples, time.perf_counter() - started)


def _mixed(cfg: SynthConfig, corpus: Corpus) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The real queries and qrels of ``cfg.mix_with`` (their texts from ``data``'s queries file)."""
    if not cfg.mix_with:
        return {}, {}
    problems: list[Problem] = []
    qrels = load_qrels(Path(cfg.mix_with).expanduser(), cfg.data.fields, problems)
    texts = load_queries(resolve_paths(cfg.data)["queries"], cfg.data.fields, problems)
    unknown = sorted(q for q in qrels if q not in texts)
    if unknown:
        problems.append(Problem(f"{len(unknown)} query id(s) of mix_with have no text in the queries file: "
                                f"{unknown[:5]}.", cfg.mix_with))
    if problems:
        raise DataError(problems)
    qrels = {q: {d: r for d, r in docs.items() if r >= cfg.data.min_relevance and d in corpus}
             for q, docs in qrels.items()}
    return {q: texts[q] for q in qrels if qrels[q]}, {q: docs for q, docs in qrels.items() if docs}


def write_label_set(cfg: SynthConfig, corpus: Corpus, kept: list[tuple[str, str]], dropped: Counter, run,
                    inputs: dict[str, str], examples: str, seconds: float) -> Path:
    """queries.jsonl, qrels/train.tsv (+ dev.tsv), config.yaml, then manifest.json last."""
    out = Path(cfg.output_dir)
    counter: Counter = Counter()
    queries, qrels = {}, {}
    for query, doc_id in kept:
        qid = synthetic_query_id(doc_id, counter[doc_id])
        counter[doc_id] += 1
        queries[qid], qrels[qid] = query, {doc_id: 1}
    dev_ids = set(carve_dev(sorted(queries), cfg.dev_fraction, 0, cfg.seed, synthetic_passage))
    real_queries, real_qrels = _mixed(cfg, corpus)
    train = {**{q: r for q, r in qrels.items() if q not in dev_ids}, **real_qrels}
    rows = [{"_id": q, "text": t, "metadata": {"passage": next(iter(qrels[q]))}} for q, t in queries.items()]
    rows += [{"_id": q, "text": t, "metadata": {"real": True}} for q, t in real_queries.items()]
    write_jsonl_atomic(out / "queries.jsonl", rows)
    write_qrels_atomic(out / "qrels" / "train.tsv", train)
    if dev_ids:
        write_qrels_atomic(out / "qrels" / "dev.tsv", {q: qrels[q] for q in sorted(dev_ids)})
    (out / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    generated = sum(dropped[r] for r in DROP_REASONS if r != "generator_error") + len(kept)
    manifest = {
        "stage": "synth",
        "config": to_dict(cfg),
        "generator": {"kind": resolved_kind(cfg.generator), "model": cfg.generator.model,
                      "gguf_file": cfg.generator.gguf_file, "base_url": cfg.generator.base_url},
        "prompt": cfg.prompt,
        "examples": examples,
        "inputs": {name: {"path": p, "sha256": hash_path(p)} for name, p in inputs.items()},
        "counts": {"corpus_passages": len(corpus), "passages_sampled": len(run.sample),
                   "passages_generated_this_run": run.generated, "passages_reused": run.reused,
                   "generator_errors_this_run": run.errors, "queries_generated": generated,
                   "dropped": dict(dropped), "queries_kept": len(kept), "queries_train": len(kept) - len(dev_ids),
                   "queries_dev": len(dev_ids), "real_queries_mixed_in": len(real_queries)},
        "speed": run.speed(),
        "seconds": round(seconds, 1),
        "versions": versions(),
        "git_commit": git_commit(),
        "outputs": {"queries": "queries.jsonl", "qrels": "qrels/train.tsv",
                    "dev_qrels": "qrels/dev.tsv" if dev_ids else None, "generated": "generated.jsonl"},
    }
    write_json(out / MANIFEST, manifest)
    logger.info("Kept %d of %d generated queries (dropped: %s).", len(kept), generated,
                ", ".join(f"{r} {n}" for r, n in dropped.items() if n) or "none")
    return out


def data_overrides(out: Path, split: str = "train") -> dict[str, str]:
    """The mining ``data`` keys that read the label set in ``out`` (its queries and the qrels of ``split``)."""
    return {"queries": str(out / "queries.jsonl"), "qrels": str(out / "qrels" / f"{split}.tsv")}


"""Run the pipeline over labelled queries and summarise it: retrieval metrics per stage and reranker,
paired significance against the first reranker, answer quality, prompt tokens, latency per stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rerankforge.eval.answers import answer_in_context, exact_match, token_f1
from rerankforge.eval.data import EvalData
from rerankforge.eval.generate import Generation, answer_text
from rerankforge.eval.metrics import paired_test, per_query
from rerankforge.eval.pipeline import Pipeline, Reranked
from rerankforge.eval.retrieve import Hits


@dataclass
class QueryRecord:
    """Everything the pipeline did for one query; timings in milliseconds."""

    query_id: str
    query: str
    first_stage: Hits
    retrieve_ms: float
    reranked: dict[str, Reranked] = field(default_factory=dict)
    rerank_ms: dict[str, float] = field(default_factory=dict)
    generations: dict[str, dict[int, Generation]] = field(default_factory=dict)  # reranker -> top_n -> output
    generate_ms: dict[str, float] = field(default_factory=dict)  # at generate.top_n


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, 1000 * (time.perf_counter() - start)


def run_pipeline(pipeline: Pipeline, data: EvalData) -> list[QueryRecord]:
    """Each query once through retrieval, then through every reranker and the generator (one at a time, so
    the latencies are per query, as a deployment sees them)."""
    cfg = pipeline.cfg
    sizes = sorted(set(cfg.generate.top_n_sweep) | {cfg.generate.top_n})
    records = []
    for query_id in tqdm(list(data.qrels), desc="Evaluating queries", unit="query"):
        query = data.queries[query_id]
        hits, ms = _timed(lambda q: pipeline.retriever.search([q])[0], query)
        record = QueryRecord(query_id, query, hits, ms)
        for name in pipeline.rerankers:
            record.reranked[name], record.rerank_ms[name] = _timed(pipeline.rerank, name, query, hits)
            if pipeline.generator is None:
                continue
            passing = record.reranked[name].passing
            outputs = {}
            for n in sizes:
                outputs[n], ms = _timed(pipeline.generate, query, passing, n)
                if n == cfg.generate.top_n:
                    record.generate_ms[name] = ms
            record.generations[name] = outputs
        records.append(record)
    return records


def percentiles(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=float)
    if arr.size == 0:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "mean": float(arr.mean())}


TIE_STEP = 1e-6  # visible in TREC files (6 decimals), far below real score gaps (RRF ranks differ by ~3e-4)


def untied(hits: Hits) -> dict[str, float]:
    """``hits`` as a run whose scores strictly decrease in the pipeline's order.

    Tied scores (common with RRF) would otherwise be re-ordered by trec_eval's doc-id tie-break, and the metrics
    would describe a ranking the pipeline never produced. A tied score is lowered by ``TIE_STEP`` per tie.
    """
    run, previous = {}, float("inf")
    for doc_id, score in hits:
        previous = min(float(score), previous - TIE_STEP)
        run[doc_id] = previous
    return run


def runs_of(records: list[QueryRecord], names: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"first_stage": run, reranker: run}`` in BEIR's ``{query_id: {doc_id: score}}`` shape."""
    runs = {"first_stage": {r.query_id: untied(r.first_stage) for r in records}}
    for name in names:
        runs[name] = {r.query_id: untied(r.reranked[name].hits) for r in records}
    return runs


def answer_summary(records: list[QueryRecord], name: str, answers: dict[str, list[str]], texts: dict[str, str],
                   n: int) -> dict[str, float]:
    """Mean EM / F1 / answer-in-context / prompt tokens at ``n`` passages over queries with gold answers."""
    rows = [r for r in records if r.query_id in answers and name in r.generations]
    if not rows:
        return {}
    em = [exact_match(answer_text(r.generations[name][n].answer), answers[r.query_id]) for r in rows]
    f1 = [token_f1(answer_text(r.generations[name][n].answer), answers[r.query_id]) for r in rows]
    ctx = [answer_in_context([texts[d] for d in r.reranked[name].passing[:n]], answers[r.query_id]) for r in rows]
    tokens = [r.generations[name][n].prompt_tokens for r in rows]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1)), "answer_in_context": float(np.mean(ctx)),
            "prompt_tokens": float(np.mean(tokens)), "queries": len(rows)}


def summarize(pipeline: Pipeline, data: EvalData, records: list[QueryRecord]) -> dict:
    """The content of ``report.json`` (also what ``report.md`` and the plots are drawn from)."""
    cfg = pipeline.cfg
    names = list(pipeline.rerankers)
    runs = runs_of(records, names)
    values = {name: per_query(data.qrels, run, cfg.metrics) for name, run in runs.items()}
    baseline = names[0]
    sizes = sorted(set(cfg.generate.top_n_sweep) | {cfg.generate.top_n})
    rerankers = {}
    for name in names:
        spec = cfg.rerankers[name]
        entry = {"model": spec.model, "depth": spec.depth, "threshold": spec.threshold,
                 "metrics": {m: float(np.mean(list(v.values()))) for m, v in values[name].items()}}
        if name != baseline:
            entry["vs_" + baseline] = {m: paired_test(values[baseline][m], values[name][m]) for m in cfg.metrics}
        if pipeline.generator is not None:
            entry["answers"] = answer_summary(records, name, data.answers, pipeline.texts, cfg.generate.top_n)
            entry["answers_by_top_n"] = {n: answer_summary(records, name, data.answers, pipeline.texts, n)
                                         for n in sizes}
        total = [r.retrieve_ms + r.rerank_ms[name] + r.generate_ms.get(name, 0.0) for r in records]
        entry["latency_ms"] = {"rerank": percentiles([r.rerank_ms[name] for r in records]),
                               "generate": percentiles([r.generate_ms[name] for r in records if name in r.generate_ms]),
                               "total": percentiles(total)}
        rerankers[name] = entry
    return {
        "data": {"queries": len(records), "corpus_documents": len(pipeline.texts),
                 "queries_with_answers": sum(r.query_id in data.answers for r in records), "sources": data.sources},
        "first_stage": {"method": cfg.retrieve.method, "top_k": cfg.retrieve.top_k,
                        "encoder": cfg.retrieve.encoder.name_or_path if cfg.retrieve.method != "bm25" else None,
                        "metrics": {m: float(np.mean(list(v.values()))) for m, v in values["first_stage"].items()},
                        "latency_ms": {"retrieve": percentiles([r.retrieve_ms for r in records])}},
        "generate": {"kind": cfg.generate.kind, "model": cfg.generate.model, "top_n": cfg.generate.top_n},
        "baseline": baseline,
        "rerankers": rerankers,
        "per_query": {name: values[name] for name in runs},
    }

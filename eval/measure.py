"""Run the pipeline over labelled queries and summarise it: retrieval metrics per stage and reranker,
paired significance against the first reranker, answer quality, prompt tokens, latency per stage."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Optional, Union

import numpy as np
from tqdm.auto import tqdm

from rerankforge.core import distributed
from rerankforge.core.metrics import paired_test, per_query, untied
from rerankforge.eval.answers import answer_in_context, exact_match, token_f1
from rerankforge.eval.cutoff import CONFIGURED, Sent, cutoff_points
from rerankforge.eval.data import EvalData
from rerankforge.eval.examples import example_queries
from rerankforge.eval.generate import Generation, answer_text
from rerankforge.eval.pipeline import Pipeline, Reranked
from rerankforge.eval.retrieve import Hits, Retriever
from rerankforge.models.loading import hardware
from rerankforge.retrieval.corpus_store import texts_in_order


@dataclass
class QueryRecord:
    """Everything the pipeline did for one query; timings in milliseconds."""

    query_id: str
    query: str
    first_stage: Hits
    retrieve_ms: float
    reranked: dict[str, Reranked] = field(default_factory=dict)
    rerank_ms: dict[str, float] = field(default_factory=dict)
    # reranker -> passages sent (each top_n_sweep size, each cut-off's count) -> output
    generations: dict[str, dict[int, Generation]] = field(default_factory=dict)
    generate_ms: dict[str, float] = field(default_factory=dict)  # at generate.cutoff
    sent: dict[str, dict[str, Sent]] = field(default_factory=dict)  # reranker -> cut-off label -> what it sends
    probabilities: dict[str, Optional[list[float]]] = field(default_factory=dict)  # of the passing passages
    llm_usage: dict[str, dict[str, int]] = field(default_factory=dict)  # kind=llm rows: calls, cached and tokens


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, 1000 * (time.perf_counter() - start)


def generate_counts(pipeline: Pipeline, query: str, passages: list[str],
                    counts: list[int]) -> dict[int, tuple[Generation, float]]:
    """``{n: (generation from the first n passages, ms)}`` for each of ``counts``, with one generator call per
    distinct number of passages really sent (every n past ``len(passages)`` sends them all)."""
    done: dict[int, tuple[Generation, float]] = {}
    out = {}
    for n in counts:
        sent = min(n, len(passages))
        if sent not in done:
            done[sent] = _timed(pipeline.generate, query, passages, sent)
        out[n] = done[sent]
    return out


def run_pipeline(pipeline: Pipeline, data: EvalData) -> list[QueryRecord]:
    """Each query once through retrieval, then through every reranker and the generator (one at a time, so
    the latencies are per query, as a deployment sees them). The generator answers from each ``top_n_sweep``
    size and each cut-off's passages (``generate.cutoff`` and its sweep), once per distinct number of passages."""
    cfg = pipeline.cfg
    sizes = sorted(set(cfg.generate.top_n_sweep) | {cfg.generate.top_n})
    # under accelerate launch each process runs a contiguous share of the queries; the records are gathered in order
    with distributed.share_of(list(data.qrels)) as share:
        records = _run_queries(pipeline, data, share, sizes)
    return distributed.gather_lists(records)


def _run_queries(pipeline: Pipeline, data: EvalData, query_ids: list[str], sizes: list[int]) -> list[QueryRecord]:
    records = []
    for query_id in tqdm(query_ids, desc="Evaluating queries", unit="query",
                         disable=not distributed.state().is_local_main_process):
        query = data.queries[query_id]
        hits, ms = _timed(pipeline.first_stage, query)
        record = QueryRecord(query_id, query, hits, ms)
        for name in pipeline.rerankers:
            usage = getattr(pipeline.rerankers[name], "usage", None)  # an LLM judge's running counts
            before = usage.as_dict() if usage is not None else None
            record.reranked[name], record.rerank_ms[name] = _timed(pipeline.rerank, name, query, hits)
            if usage is not None:
                after = usage.as_dict()
                record.llm_usage[name] = {k: after[k] - before[k] for k in LLM_COUNTS}
            if pipeline.generator is None:
                continue
            reranked = record.reranked[name]
            record.sent[name], record.probabilities[name] = pipeline.cut(name, reranked)
            main = record.sent[name][CONFIGURED].passages
            outputs = generate_counts(pipeline, query, reranked.passages,
                                      sizes + [s.passages for s in record.sent[name].values()])
            record.generations[name] = {n: generation for n, (generation, _) in outputs.items()}
            record.generate_ms[name] = outputs[main][1]
        records.append(record)
    return records


LLM_COUNTS = ("calls", "cached", "prompt_tokens", "completion_tokens")


def llm_summary(spec, records: list[QueryRecord], name: str, usage) -> dict:
    """A ``kind: llm`` row's cost: tokens per query (means), the price of 1,000 queries at ``spec.llm``'s prices,
    calls made and answered from the journal, and failed calls by kind."""
    totals = {k: sum(r.llm_usage[name][k] for r in records) for k in LLM_COUNTS}
    n = max(1, len(records))
    prompt, completion = totals["prompt_tokens"] / n, totals["completion_tokens"] / n
    judge = spec.llm
    cost = 1000 * (prompt * judge.price_per_million_prompt_tokens
                   + completion * judge.price_per_million_completion_tokens) / 1e6
    return {"mode": judge.mode, "model": judge.model or judge.base_url, "gguf_file": judge.gguf_file,
            "prompt_tokens_per_query": prompt, "completion_tokens_per_query": completion,
            "cost_per_1000_queries": cost, "calls": totals["calls"], "cached": totals["cached"],
            "failures": dict(usage.failures)}


def percentiles(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=float)
    if arr.size == 0:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "mean": float(arr.mean())}


def runs_of(records: list[QueryRecord], names: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"first_stage": run, reranker: run, reranker-alone: run}`` in BEIR's ``{query_id: {doc_id: score}}``
    shape; ``<name>-alone`` (the reranker without fusion) exists for the rerankers that fuse."""
    runs = {"first_stage": {r.query_id: untied(r.first_stage) for r in records}}
    for name in names:
        runs[name] = {r.query_id: untied(r.reranked[name].hits) for r in records}
        if records and records[0].reranked[name].alone is not None:
            runs[f"{name}-alone"] = {r.query_id: untied(r.reranked[name].alone) for r in records}
    return runs


def compare_first_stages(pipeline: Pipeline, data: EvalData) -> dict[str, dict[str, dict[str, float]]]:
    """Runs of every first stage in ``retrieve.compare`` over the labelled queries, keyed by method."""
    compare = pipeline.cfg.retrieve.compare
    if not compare:
        return {}
    retriever = pipeline.retriever
    if retriever.method != "hybrid":  # a hybrid stage runs all three methods; the encoder is shared
        ids, stage = retriever.stage.doc_ids, retriever.stage
        retriever = Retriever(replace(stage.spec, method="hybrid"), retriever.top_k, ids,
                              texts_in_order(pipeline.texts, ids), stage.cache_dir, stage.encoder, pipeline.documents)
    query_ids = list(data.qrels)
    hits = retriever.search_all([data.queries[q] for q in query_ids])
    return {method: {q: untied(h) for q, h in zip(query_ids, hits[method])} for method in compare}


def answer_summary(records: list[QueryRecord], name: str, answers: dict[str, list[str]], texts: dict[str, str],
                   n: Union[int, str]) -> dict[str, float]:
    """Mean EM / F1 / answer-in-context / prompt tokens over queries with gold answers, at ``n`` passages (an
    int) or at what the cut-off labelled ``n`` sends (a label of ``QueryRecord.sent``; then also the mean
    ``passages`` sent and their ``passage_tokens``, None where uncounted)."""
    rows = [r for r in records if r.query_id in answers and name in r.generations
            and (isinstance(n, int) or n in r.sent[name])]
    if not rows:
        return {}
    counts = [n if isinstance(n, int) else r.sent[name][n].passages for r in rows]
    outputs = [r.generations[name][k] for r, k in zip(rows, counts)]
    em = [exact_match(answer_text(g.answer), answers[r.query_id]) for r, g in zip(rows, outputs)]
    f1 = [token_f1(answer_text(g.answer), answers[r.query_id]) for r, g in zip(rows, outputs)]
    ctx = [answer_in_context([texts[p] for p in r.reranked[name].passages[:k]], answers[r.query_id])
           for r, k in zip(rows, counts)]
    summary = {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1)), "answer_in_context": float(np.mean(ctx)),
               "prompt_tokens": float(np.mean([g.prompt_tokens for g in outputs])), "queries": len(rows)}
    if isinstance(n, str):
        tokens = [r.sent[name][n].passage_tokens for r in rows]
        summary.update(passages=float(np.mean(counts)),
                       passage_tokens=None if None in tokens else float(np.mean(tokens)))
    return summary


def cutoff_answers(pipeline: Pipeline, records: list[QueryRecord], name: str,
                   answers: dict[str, list[str]]) -> tuple[dict, list[dict]]:
    """Reranker ``name``'s answers at ``generate.cutoff`` (``answer_summary`` at ``generate.top_n`` for the top_n
    cut-off, as without one; else with the ``cutoff`` kind the row used), and one entry per sweep point:
    ``{kind, value, passages, passage_tokens, prompt_tokens, answer_in_context, exact_match, f1, queries}``."""
    g = pipeline.cfg.generate
    if g.cutoff.kind == "top_n":
        main = answer_summary(records, name, answers, pipeline.texts, g.top_n)
    else:
        main = answer_summary(records, name, answers, pipeline.texts, CONFIGURED)
        if main:
            main["cutoff"] = next(r.sent[name][CONFIGURED].kind for r in records if name in r.sent)
    sweep = []
    for label, c in cutoff_points(g, pipeline.rerankers[name] is not None).items():
        summary = answer_summary(records, name, answers, pipeline.texts, label) if label != CONFIGURED else {}
        if summary:
            value = c.min_probability if c.kind == "min_probability" else c.token_budget
            sweep.append({"kind": c.kind, "value": value, **summary})
    return main, sweep


def _mean(values: dict[str, dict[str, float]]) -> dict[str, float]:
    return {m: float(np.mean(list(v.values()))) for m, v in values.items()}


def _vs(reference: dict, values: dict, metrics: list[str]) -> dict:
    return {m: paired_test(reference[m], values[m]) for m in metrics}


def main_reranker(cfg, names: list[str]) -> Optional[str]:
    """The reranker a report is about: ``finetuned`` when there is one, else the last one with a model."""
    with_model = [n for n in names if cfg.rerankers[n].model]
    return "finetuned" if "finetuned" in with_model else (with_model[-1] if with_model else None)


def _examples(data: EvalData, runs: dict, first_stages: dict, values: dict, stages: dict, best: str, key: str,
              name: Optional[str], cfg) -> Optional[dict]:
    """Queries reranker ``name``'s final ranking helped and hurt most against the best first stage."""
    if name is None:
        return None
    before = runs["first_stage"] if best == cfg.first_stage.method else first_stages[best]
    found = example_queries(data.qrels, data.queries, data.corpus, before, runs[name], stages[best][key],
                            values[name][key])
    return None if found is None else {"reranker": name, "against": best, "metric": key, **found}


def _counts(pipeline: Pipeline, data: EvalData, records: list[QueryRecord]) -> dict:
    documents = pipeline.documents
    return {"queries": len(records), "corpus_passages": len(pipeline.texts),
            "corpus_documents": len(documents.chunks) if documents else len(pipeline.texts),
            "document_scoring": documents.aggregate if documents else None,
            "queries_with_answers": sum(r.query_id in data.answers for r in records), "sources": data.sources}


def summarize(pipeline: Pipeline, data: EvalData, records: list[QueryRecord],
              first_stages: dict[str, dict[str, dict[str, float]]] | None = None) -> dict:
    """The content of ``report.json`` (also what ``report.md`` and the plots are drawn from).

    ``first_stages`` (from ``compare_first_stages``) adds a row per first stage; the best of them and the
    configured one by nDCG@10 (or the first metric) is what every reranker is tested against.
    """
    cfg = pipeline.cfg
    names = list(pipeline.rerankers)
    runs = runs_of(records, names)
    values = {name: per_query(data.qrels, run, cfg.metrics) for name, run in runs.items()}
    stages = {method: per_query(data.qrels, run, cfg.metrics) for method, run in (first_stages or {}).items()}
    stages[cfg.first_stage.method] = values["first_stage"]  # the run that was reranked, query by query
    key = "ndcg@10" if "ndcg@10" in cfg.metrics else cfg.metrics[0]
    best = max(stages, key=lambda m: np.mean(list(stages[m][key].values())))
    baseline, main = names[0], main_reranker(cfg, names)
    sizes = sorted(set(cfg.generate.top_n_sweep) | {cfg.generate.top_n})
    rerankers = {}
    for name in names:
        spec = cfg.rerankers[name]
        fusion = pipeline.fusion.get(name)
        entry = {"kind": spec.kind, "model": spec.llm.model or spec.llm.base_url if spec.kind == "llm" else spec.model,
                 "depth": spec.depth, "threshold": spec.threshold, "max_passage_tokens": spec.max_passage_tokens,
                 "max_length": getattr((pipeline.rerankers or {}).get(name), "max_length", None),  # the one it read
                 "fusion": None if fusion is None else {"method": fusion[0], "alpha": fusion[1]},  # rrf_k: config
                 "metrics": _mean(values[name])}
        if name != baseline:
            entry["vs_" + baseline] = _vs(values[baseline], values[name], cfg.metrics)
        if spec.kind == "llm":
            entry["llm"] = llm_summary(spec, records, name, pipeline.rerankers[name].usage)
        if spec.reranks:
            entry["vs_best_first_stage"] = _vs(stages[best], values[name], cfg.metrics)
        if f"{name}-alone" in values:
            alone = values[f"{name}-alone"]
            entry["alone"] = {"metrics": _mean(alone), "vs_best_first_stage": _vs(stages[best], alone, cfg.metrics)}
        if pipeline.generator is not None:
            entry["answers"], by_cutoff = cutoff_answers(pipeline, records, name, data.answers)
            entry["answers_by_top_n"] = {n: answer_summary(records, name, data.answers, pipeline.texts, n)
                                         for n in sizes}
            if cfg.generate.cutoff.sweep.min_probability or cfg.generate.cutoff.sweep.token_budget:
                entry["answers_by_cutoff"] = by_cutoff
        total = [r.retrieve_ms + r.rerank_ms[name] + r.generate_ms.get(name, 0.0) for r in records]
        entry["latency_ms"] = {"rerank": percentiles([r.rerank_ms[name] for r in records]),
                               "generate": percentiles([r.generate_ms[name] for r in records if name in r.generate_ms]),
                               "total": percentiles(total)}
        rerankers[name] = entry
    return {
        "hardware": hardware(),
        "main_reranker": main,
        "examples": _examples(data, runs, first_stages or {}, values, stages, best, key, main, cfg),
        "data": _counts(pipeline, data, records),
        "first_stage": {"method": cfg.first_stage.method, "top_k": cfg.retrieve.top_k, "why": cfg.first_stage.reason,
                        "encoder": cfg.first_stage.encoder.name_or_path if cfg.first_stage.uses_encoder else None,
                        "metrics": _mean(values["first_stage"]),
                        "latency_ms": {"retrieve": percentiles([r.retrieve_ms for r in records])}},
        "first_stages": {method: {"metrics": _mean(v), "vs_best_first_stage": _vs(stages[best], v, cfg.metrics)}
                         for method, v in stages.items()},
        "best_first_stage": best,
        "generate": {"kind": cfg.generate.kind, "model": cfg.generate.model, "top_n": cfg.generate.top_n,
                     "cutoff": asdict(cfg.generate.cutoff)},
        "baseline": baseline,
        "rerankers": rerankers,
        "per_query": {**{name: values[name] for name in runs}, **{f"first_stage:{m}": v for m, v in stages.items()}},
    }

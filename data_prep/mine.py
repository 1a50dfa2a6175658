"""``rerankforge mine``: corpus + labelled queries → an HF dataset of hard negatives + ``manifest.json``.

    rerankforge mine --config configs/data_prep/scifact.yaml data.path=../shared/data/scifact

Steps: check the config, load and validate the data (all problems at once), find first-stage candidates,
optionally rescore them with a cross-encoder, select negatives (pure), write the output atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from rerankforge.core import distributed
from rerankforge.core.dev_split import carve_dev, dev_records
from rerankforge.core.io import hash_path, resolve_cache_dir
from rerankforge.core.metrics import evaluate_run, untied
from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.config import MineConfig, check_mine_config
from rerankforge.data_prep.judging import filter_hard, judge_rows, load_mining_judge
from rerankforge.data_prep.negatives import FATES, SelectionOptions, fit_window, sample_easy_negatives, select_negatives
from rerankforge.data_prep.output import write_mine_output
from rerankforge.data_prep.rescore import rescore_pairs
from rerankforge.data_prep.synth import synthetic_passage
from rerankforge.data_prep.validate import check_negatives, validate
from rerankforge.retrieval.chunking import Documents, folder_spans, split_corpus
from rerankforge.retrieval.corpus_store import corpus_ids, corpus_texts, row_finder, take_texts
from rerankforge.retrieval.encode import load_encoder
from rerankforge.retrieval.first_stage import FirstStage
from rerankforge.retrieval.loaders import (
    Corpus,
    Queries,
    load_corpus_any,
    load_negatives,
    load_qrels,
    load_queries,
    resolve_paths,
)

logger = logging.getLogger(__name__)


@dataclass
class LabelledData:
    """Validated input: BEIR-shaped corpus and queries, plus the positives of the queries to mine."""

    corpus: Corpus
    queries: Queries
    positives: dict[str, list[str]]
    inputs: dict[str, dict[str, str]]
    counts: dict[str, int] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # graded labels of the queries in positives
    # data.chunking.mode=all: corpus holds passages, positives and qrels name documents until
    # positives_from_documents picks each relevant document's best passage
    documents: Optional[Documents] = None
    excluded: dict[str, set[str]] = field(default_factory=dict)  # never a negative: every passage of a positive
    negatives: dict[str, list[str]] = field(default_factory=dict)  # given with the data (data.negatives)


def load_labelled_data(cfg: MineConfig) -> LabelledData:
    """Load corpus, queries, qrels (and eval qrels), validate everything, and report all problems together.

    Raises:
        DataError: every error found (file and line where it applies). Warnings are logged.
    """
    problems = [Problem(p) for p in check_mine_config(cfg)]
    if problems:
        raise DataError(problems)
    paths = resolve_paths(cfg.data)
    missing = [Problem(f"{name} file not found: {p}", str(p)) for name, p in paths.items() if p and not p.exists()]
    if missing:
        raise DataError(missing)
    chunking = cfg.data.chunking
    spans = folder_spans(paths["corpus"], cfg.data, cfg.first_stage.encoder.name_or_path)
    corpus = load_corpus_any(paths["corpus"], cfg.data, problems, spans, resolve_cache_dir(cfg.cache_dir))
    queries = load_queries(paths["queries"], cfg.data.fields, problems)
    qrels = load_qrels(paths["qrels"], cfg.data.fields, problems)
    eval_qrels = load_qrels(paths["eval_qrels"], cfg.data.fields, problems) if paths["eval_qrels"] else None
    given = load_negatives(paths["negatives"], problems) if paths["negatives"] else {}
    sources = {name: str(p) for name, p in paths.items() if p}
    labelled = validate(corpus, queries, qrels, eval_qrels, sources, cfg.data, problems)
    given = check_negatives(given, corpus, labelled.positives, sources.get("negatives"), problems)
    query_ids = sorted(labelled.positives)[: cfg.max_queries]
    if cfg.first_stage.method == "auto" and query_ids and not carve_dev(query_ids, cfg.data.dev_fraction,
                                                                        cfg.data.dev_min_queries, cfg.seed,
                                                                        synthetic_passage):
        problems.append(Problem(f"first_stage.method=auto picks the first stage on the dev split, but {len(query_ids)} "
                                "labelled queries leave no dev split (it needs at least 4). Name the first stage "
                                "(first_stage.method=hybrid, dense or bm25).", sources.get("qrels")))
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise DataError(errors)
    for warning in problems:
        logger.warning("%s", warning)
    passages, documents = split_corpus(corpus, chunking, cfg.first_stage.encoder.name_or_path)
    return LabelledData(
        passages, queries, {q: labelled.positives[q] for q in query_ids},
        inputs={name: {"path": str(p), "sha256": hash_path(p)} for name, p in paths.items() if p},
        documents=documents,
        counts={"corpus_documents": len(corpus), "corpus_passages": len(passages), "queries_labelled": len(qrels),
                "queries_skipped_no_positive": len(labelled.skipped_no_positive),
                "queries_beyond_max_queries": len(labelled.positives) - len(query_ids)},
        qrels={q: qrels[q] for q in query_ids}, negatives={q: given[q] for q in query_ids if q in given},
    )


def selection_options(cfg: MineConfig) -> SelectionOptions:
    m = cfg.mining
    return SelectionOptions(num_negatives=m.num_negatives, range_min=m.range_min, range_max=m.range_max,
                            absolute_margin=m.absolute_margin, relative_margin=m.relative_margin,
                            max_score=m.max_score, min_score=m.min_score, sampling_strategy=m.sampling_strategy)


def fit_to_corpus(cfg: MineConfig, corpus_size: int) -> MineConfig:
    """``cfg`` with ``mining.range_max`` cut to what a small corpus leaves room for (``negatives.fit_window``);
    the manifest's resolved config holds the value used."""
    window = fit_window(selection_options(cfg), corpus_size).range_max
    if window == cfg.mining.range_max:
        return cfg
    logger.info("mining.range_max=%d is cut to %d for a corpus of %d passages (half of it, and at least range_min + "
                "num_negatives), so that random negatives have passages outside the candidate window to come from.",
                cfg.mining.range_max, window, corpus_size)
    return dataclasses.replace(cfg, mining=dataclasses.replace(cfg.mining, range_max=window))


def query_rng(seed: int, query_id: str) -> random.Random:
    """One generator per query, so a query's sample does not depend on the others."""
    return random.Random(f"{seed}:{query_id}")


def _rescore_all(cfg: MineConfig, pairs_rows: list[list[int]], query_texts: list[str],
                 doc_texts: Sequence[str]) -> list[dict[int, float]]:
    """Cross-encoder score of every (query, row) in ``pairs_rows``, as one batched predict call."""
    flat = [(qi, row) for qi, rows in enumerate(pairs_rows) for row in dict.fromkeys(rows)]
    texts = take_texts(doc_texts, [row for _, row in flat])
    scores = rescore_pairs(cfg.mining.rescore, [(query_texts[qi], text) for (qi, _), text in zip(flat, texts)],
                           device=cfg.first_stage.encoder.device)
    out: list[dict[int, float]] = [{} for _ in pairs_rows]
    for (qi, row), score in zip(flat, scores):
        out[qi][row] = score
    return out


@dataclass
class MinedQuery:
    """What mining chose for one query (rows index the sorted corpus ids)."""

    query_id: str
    positive_rows: list[int]
    positive_scores: list[float]
    negative_rows: list[int]
    negative_scores: list[float]
    negative_kinds: list[str]
    rescores: Optional[dict[int, float]] = None
    judged: Optional[dict[int, float]] = None  # mining.judge: the LLM judge's log-odds of each positive and negative
    lexical: Optional[dict[int, float]] = None  # a hybrid stage's BM25 score of each positive and negative row


def mine_queries(cfg: MineConfig, data: LabelledData, doc_ids: Sequence[str], doc_texts: Sequence[str],
                 stage: FirstStage, query_ids: list[str]) -> tuple[list[MinedQuery], Counter]:
    """Candidates → (optional rescoring) → pure selection, per query. Returns the results and the fate tally.

    Every process searches for every query (the query vectors are encoded once, into the shared cache); under
    ``accelerate launch`` each then rescores, selects (and, behind hybrid, scores BM25) for its share of the
    queries, and all results are gathered in query order.
    """
    row_of = row_finder(doc_ids)
    positive_rows = [[row_of(d) for d in data.positives[q]] for q in query_ids]
    # the depth is the same whichever queries a process gets
    k = cfg.mining.range_max + max((len(p) for p in data.positives.values()), default=0)
    cands = stage.search([data.queries[q] for q in query_ids], k)
    with distributed.share_of(range(len(query_ids))) as share:
        mined, tally = select_for_queries(cfg, data, doc_ids, doc_texts, cands, row_of,
                                          [(query_ids[i], i, positive_rows[i]) for i in share])
        if stage.spec.method == "hybrid" and stage.bm25 is not None:
            # hybrid's own scores are ranks; the teacher of `loss.teacher=first_stage` needs both of its similarities
            for q in mined:
                rows = q.positive_rows + q.negative_rows
                q.lexical = dict(zip(rows, stage.bm25.scores(data.queries[q.query_id], rows).tolist()))
    return distributed.gather_lists(mined), distributed.gather_counts(tally)


def select_for_queries(cfg: MineConfig, data: LabelledData, doc_ids: Sequence[str], doc_texts: Sequence[str],
                       cands, row_of: Callable[[str], int],
                       queries: list[tuple[str, int, list[int]]]) -> tuple[list[MinedQuery], Counter]:
    """Negatives, with (optional) rescoring, for ``queries``: ``(query_id, position in cands, positive rows)``
    each; ``row_of`` maps a doc id to its row (``row_finder(doc_ids)``).

    A row gets ``mining.num_negatives`` hard negatives (the given ones of ``data.negatives`` first, then mined ones
    unless ``mining.mine_more`` is off) and ``mining.random_negatives`` random ones. Slots the filters or a small
    corpus leave empty are filled with more random ones, so every row has the same number of negatives wherever
    the corpus has the documents."""
    m = cfg.mining
    rngs = [query_rng(cfg.seed, q) for q, _, _ in queries]
    given = [[row_of(d) for d in data.negatives.get(q, [])][:m.num_negatives] for q, _, _ in queries]
    seen = [{doc_ids[r] for r in cands.rows[ci].tolist() + rows + given[i]} | data.excluded.get(q, set())
            for i, (q, ci, rows) in enumerate(queries)]
    easy = [[row_of(d) for d in sample_easy_negatives(doc_ids, seen[i], m.random_negatives, rngs[i])]
            for i in range(len(queries))]
    rescored = None
    if m.rescore.cross_encoder:
        rescored = _rescore_all(cfg, [cands.rows[ci].tolist() + rows + given[i] + easy[i]
                                      for i, (_, ci, rows) in enumerate(queries)],
                                [data.queries[q] for q, _, _ in queries], doc_texts)
    tally = Counter({fate: 0 for fate in FATES})
    judge = load_mining_judge(cfg)
    spare = m.judge.spare if judge is not None else 0
    hard = [_select_hard(cfg, data, doc_ids, cands, query, given[i], rescored[i] if rescored else None,
                         rngs[i], tally, spare)
            for i, query in enumerate(tqdm(queries, desc="Selecting negatives", unit="query"))]
    query_texts = [data.queries[q] for q, _, _ in queries]
    judged = None
    if judge is not None:
        slots = [m.num_negatives - len(given[i]) if m.mine_more else 0 for i in range(len(queries))]
        hard, judged = filter_hard(judge, cfg, query_texts, [rows for _, _, rows in queries], hard, slots, doc_texts,
                                   tally)
    fills = []
    for i, (query_id, ci, _) in enumerate(queries):
        taken = given[i] + hard[i][0] + easy[i]
        used = {*data.positives[query_id], *data.excluded.get(query_id, ()), *(doc_ids[r] for r in taken)}
        fills.append(_fill(doc_ids, row_of, [doc_ids[r] for r in cands.rows[ci].tolist()], seen[i], used,
                           m.num_negatives + m.random_negatives - len(taken), rngs[i]))
    if rescored is not None and any(fills):
        new = [[r for r in rows if r not in rescored[i]] for i, rows in enumerate(fills)]
        for i, extra in enumerate(_rescore_all(cfg, new, [data.queries[q] for q, _, _ in queries], doc_texts)):
            rescored[i].update(extra)
    if judged is not None:  # the teacher needs every negative's score, the given and random ones too
        judged = judge_rows(judge, query_texts, [given[i] + easy[i] + fills[i] for i in range(len(queries))],
                            doc_texts, judged, desc="Judging the other negatives")
    mined = []
    for i, (query_id, ci, pos_rows) in enumerate(queries):
        (rows, scores), random_rows = hard[i], easy[i] + fills[i]
        mined.append(MinedQuery(query_id, pos_rows, cands.similarity(ci, pos_rows).tolist(),
                                given[i] + rows + random_rows,
                                cands.similarity(ci, given[i]).tolist() + scores
                                + cands.similarity(ci, random_rows).tolist(),
                                ["given"] * len(given[i]) + ["hard"] * len(rows) + ["easy"] * len(random_rows),
                                rescored[i] if rescored is not None else None,
                                judged[i] if judged is not None else None))
    if judge is not None:  # counts, so the processes' tallies add up; the manifest reports them apart
        usage = judge.usage
        tally.update({"judge.calls": usage.calls, "judge.cached": usage.cached, "judge.retries": usage.retries,
                      "judge.prompt_tokens": usage.prompt_tokens,
                      **{f"judge.failed_{kind}": n for kind, n in usage.failures.items()}})
    return mined, tally


def _fill(doc_ids: Sequence[str], row_of: Callable[[str], int], ranked: list[str], window: set[str], used: set[str],
          need: int, rng: random.Random) -> list[int]:
    """``need`` rows for a row's empty slots, never one in ``used``: random ones from outside the candidate
    ``window`` first; in a corpus too small for that, the lowest-ranked of the candidates (``ranked``, best first)
    that no filter kept, since the filters drop the ones most like a positive."""
    outside = sample_easy_negatives(doc_ids, window | used, need, rng)
    taken = used | set(outside)
    inside = [d for d in reversed(ranked) if d not in taken][: need - len(outside)] if len(outside) < need else []
    return [row_of(d) for d in outside + inside]


def _select_hard(cfg: MineConfig, data: LabelledData, doc_ids: Sequence[str], cands,
                 query: tuple[str, int, list[int]], given: list[int], rescores: Optional[dict[int, float]],
                 rng: random.Random, tally: Counter, spare: int = 0) -> tuple[list[int], list[float]]:
    """The mined hard negatives of one query (rows, first-stage similarities) for the slots ``given`` leaves, and
    ``spare`` more (the judge's filter may empty slots); every candidate's fate is added to ``tally``."""
    query_id, ci, pos_rows = query
    rows = cands.rows[ci].tolist()
    # margins need similarities, not fused ranks: hybrid candidates are scored by the bi-encoder
    scores = (cands.similarity(ci, rows) if cands.score_kind == "rrf" else cands.scores[ci]).tolist()
    filter_scores, filter_pos = scores, cands.similarity(ci, pos_rows).tolist()
    if rescores is not None:
        filter_scores, filter_pos = [rescores[r] for r in rows], [rescores[r] for r in pos_rows]
    slots = cfg.mining.num_negatives - len(given) + spare if cfg.mining.mine_more else 0
    not_negatives = set(data.positives[query_id]) | data.excluded.get(query_id, set())
    chosen = select_negatives([doc_ids[r] for r in rows], filter_scores, not_negatives, min(filter_pos),
                              dataclasses.replace(selection_options(cfg), num_negatives=slots), rng,
                              given_ids={doc_ids[r] for r in given})
    tally.update(chosen.fates)
    return [rows[j] for j in chosen.indices], [scores[j] for j in chosen.indices]


def mine(cfg: MineConfig) -> Path:
    """Run the whole stage; returns the output folder (``dataset/``, ``manifest.json``, ``config.yaml``)."""
    data = load_labelled_data(cfg)
    doc_ids = corpus_ids(data.corpus)
    doc_texts = corpus_texts(data.corpus, doc_ids)
    cfg = fit_to_corpus(cfg, len(doc_ids))
    encoder = load_encoder(cfg.first_stage.encoder) if cfg.first_stage.uses_encoder else None
    dev_ids = carve_dev(sorted(data.positives), cfg.data.dev_fraction, cfg.data.dev_min_queries, cfg.seed,
                        synthetic_passage)
    auto, selection = cfg.first_stage.method == "auto", None
    spec = dataclasses.replace(cfg.first_stage, method="hybrid") if auto else cfg.first_stage  # hybrid runs all three
    stage = FirstStage(spec, doc_texts, resolve_cache_dir(cfg.cache_dir), encoder, doc_ids)
    if auto:  # load_labelled_data made sure there is a dev split
        selection = select_first_stage(stage, [data.queries[q] for q in dev_ids], [data.qrels[q] for q in dev_ids],
                                       documents=data.documents)
        stage.spec.method = max(selection, key=selection.get)
        cfg = dataclasses.replace(cfg, first_stage=dataclasses.replace(cfg.first_stage, method=stage.spec.method))
        logger.info("First stage picked on %d dev queries: %s (nDCG@10 %s).", len(dev_ids), stage.spec.method,
                    ", ".join(f"{m} {v:.4f}" for m, v in selection.items()))
    if data.documents is not None:
        data = positives_from_documents(data, stage, doc_ids)
    held_out = set(dev_ids)
    train_ids = [q for q in sorted(data.positives) if q not in held_out]
    mined, tally = mine_queries(cfg, data, doc_ids, doc_texts, stage, train_ids)
    dev = dev_records(stage, dev_ids, data.queries, data.qrels, cfg.data.dev_depth, doc_texts,
                      data.documents) if dev_ids else []
    short = sum(1 for q in mined if q.negative_kinds.count("hard") + q.negative_kinds.count("given")
                < cfg.mining.num_negatives)
    if short and cfg.mining.mine_more:
        logger.warning("%d of %d queries got fewer than mining.num_negatives=%d hard negatives; random ones fill "
                       "their rows. With a margin or max_score, negatives must rank below the positive: raise "
                       "mining.range_max (now %d) or loosen the filters.", short, len(mined),
                       cfg.mining.num_negatives, cfg.mining.range_max)
    procs = distributed.state()
    if procs.is_main_process:  # every process holds the gathered results; one writes them
        write_mine_output(cfg, data, doc_ids, doc_texts, mined, tally, encoder, dev, selection)
    procs.wait_for_everyone()
    return Path(cfg.output_dir)


def positives_from_documents(data: LabelledData, stage: FirstStage, doc_ids: list[str]) -> LabelledData:
    """Document-level qrels on a chunked corpus: each relevant document's positive (and each given negative) is its
    passage closest to the query (bi-encoder cosine; BM25 when the first stage has no bi-encoder), and no passage
    of a relevant document may be a negative."""
    documents, row_of = data.documents, row_finder(doc_ids)
    query_ids = sorted(data.positives)
    texts = [data.queries[q] for q in query_ids]
    vectors = stage.encode_queries(texts) if stage.encoder is not None else None

    def best_passage(qi: int, doc_id: str) -> str:
        rows = [row_of(p) for p in documents.chunks[doc_id]]
        scores = stage.similarity(texts[qi], rows, vectors[qi] if vectors is not None else None)
        return doc_ids[rows[int(np.argmax(scores))]]

    positives, excluded, negatives = {}, {}, {}
    for qi, query_id in enumerate(query_ids):
        positives[query_id] = [best_passage(qi, d) for d in data.positives[query_id]]
        negatives[query_id] = [best_passage(qi, d) for d in data.negatives.get(query_id, [])]
        excluded[query_id] = {p for d, rel in data.qrels.get(query_id, {}).items() if rel > 0
                              for p in documents.chunks.get(d, [])}
    counts = {**data.counts, "positives_from_documents": sum(len(v) for v in positives.values())}
    logger.info("Document-level labels: %d positives are the best passage (by %s) of a relevant document.",
                counts["positives_from_documents"], "cosine" if vectors is not None else "BM25")
    return dataclasses.replace(data, positives=positives, excluded=excluded, counts=counts,
                               negatives={q: n for q, n in negatives.items() if n})


def select_first_stage(stage: FirstStage, queries: list[str], qrels: list[dict[str, int]], k: int = 100,
                       documents: Optional[Documents] = None) -> dict:
    """nDCG@10 of every method ``stage`` runs, on labelled queries (the dev split): ``{method: value}``; with
    ``documents``, of the document runs pooled from passages."""
    labels = {str(i): q for i, q in enumerate(qrels)}
    depth = k if documents is None else documents.fetch_depth(k)
    pooled = {method: hits if documents is None else [documents.pool_hits(h, k) for h in hits]
              for method, hits in stage.hits_all(queries, depth).items()}
    return {method: evaluate_run(labels, {str(i): untied(h) for i, h in enumerate(hits)}, ["ndcg@10"])["ndcg@10"]
            for method, hits in pooled.items()}

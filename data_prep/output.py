"""Write the mining output: ``dataset/`` (HF datasets), ``config.yaml`` and ``manifest.json``, atomically.

One dataset row per (query, positive); the held-out dev queries go to ``dev.jsonl`` instead
(``core/dev_split.py``). Columns:
``query_id, query, positive_id, positive, positive_score, negative_ids, negatives, negative_scores,
negative_kinds``; when a cross-encoder rescored the candidates, ``positive_rescore, negative_rescores``; behind a
hybrid first stage, ``positive_lexical, negative_lexical`` (BM25). Scores are first-stage scores (cosine, or BM25
behind a BM25 stage), kept for distillation.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from rerankforge.core import distributed
from rerankforge.core.config import dump_yaml, to_dict
from rerankforge.core.dev_split import DEV_FILE, write_dev
from rerankforge.core.io import MANIFEST, atomic_output_dir, git_commit, versions, write_json

if TYPE_CHECKING:
    from rerankforge.data_prep.config import MineConfig
    from rerankforge.data_prep.mine import LabelledData, MinedQuery
    from rerankforge.retrieval.encode import Encoder


def _features(rescored: bool, lexical: bool = False, judged: bool = False):
    # datasets takes ~1 s to import; only this path needs it
    from datasets import Features, Sequence, Value

    columns = {"query_id": Value("string"), "query": Value("string"), "positive_id": Value("string"),
               "positive": Value("string"), "positive_score": Value("float32"),
               "negative_ids": Sequence(Value("string")), "negatives": Sequence(Value("string")),
               "negative_scores": Sequence(Value("float32")), "negative_kinds": Sequence(Value("string"))}
    if rescored:
        columns.update(positive_rescore=Value("float32"), negative_rescores=Sequence(Value("float32")))
    if lexical:
        columns.update(positive_lexical=Value("float32"), negative_lexical=Sequence(Value("float32")))
    if judged:
        columns.update(positive_judge=Value("float32"), negative_judges=Sequence(Value("float32")))
    return Features(columns)


def build_columns(data: LabelledData, doc_ids: list[str], doc_texts: list[str], mined: list[MinedQuery],
                  rescored: bool, lexical: bool = False, judged: bool = False) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in _features(rescored, lexical, judged)}
    for q in mined:
        for row, score in zip(q.positive_rows, q.positive_scores):
            columns["query_id"].append(q.query_id)
            columns["query"].append(data.queries[q.query_id])
            columns["positive_id"].append(doc_ids[row])
            columns["positive"].append(doc_texts[row])
            columns["positive_score"].append(score)
            columns["negative_ids"].append([doc_ids[r] for r in q.negative_rows])
            columns["negatives"].append([doc_texts[r] for r in q.negative_rows])
            columns["negative_scores"].append(q.negative_scores)
            columns["negative_kinds"].append(q.negative_kinds)
            if rescored:
                columns["positive_rescore"].append(q.rescores[row])
                columns["negative_rescores"].append([q.rescores[r] for r in q.negative_rows])
            if lexical:
                columns["positive_lexical"].append(q.lexical[row])
                columns["negative_lexical"].append([q.lexical[r] for r in q.negative_rows])
            if judged:
                columns["positive_judge"].append(q.judged[row])
                columns["negative_judges"].append([q.judged[r] for r in q.negative_rows])
    return columns


def mine_counts(cfg: MineConfig, data: LabelledData, mined: list[MinedQuery], tally: Counter) -> dict:
    """Counts that add up: queries, rows and every candidate's fate."""
    hard = [q.negative_kinds.count("hard") + q.negative_kinds.count("given") for q in mined]
    fates = {k: v for k, v in tally.items() if not k.startswith("judge.")}
    judge = {k.removeprefix("judge."): v for k, v in tally.items() if k.startswith("judge.")}
    return {
        **data.counts,
        "queries_mined": len(mined),
        # fewer hard (mined or given) negatives than mining.num_negatives: random ones filled the row
        "queries_short": sum(1 for n in hard if n < cfg.mining.num_negatives),
        "rows": sum(len(q.positive_rows) for q in mined),
        "given_negatives": sum(q.negative_kinds.count("given") for q in mined),
        "hard_negatives": sum(q.negative_kinds.count("hard") for q in mined),
        "easy_negatives": sum(q.negative_kinds.count("easy") for q in mined),
        "candidates": {"total": sum(fates.values()), **dict(sorted(fates.items()))},
        # mining.judge: calls made and answered from its journal, tokens, failed calls by kind
        **({"judge": judge} if judge else {}),
    }


def first_stage_why(cfg: MineConfig, selection: Optional[dict[str, float]]) -> str:
    """Why mining used the first stage it did, as a phrase: the dev figures of an automatic pick, the caller's
    ``first_stage.reason``, or the config key."""
    if selection:
        scores = ", ".join(f"{m} {v:.4f}" for m, v in sorted(selection.items(), key=lambda kv: -kv[1]))
        return f"it had the best nDCG@10 on the dev split mining held out ({scores})"
    return cfg.first_stage.reason or f"first_stage.method={cfg.first_stage.method} in the config"


def write_mine_output(cfg: MineConfig, data: LabelledData, doc_ids: list[str], doc_texts: list[str],
                      mined: list[MinedQuery], tally: Counter, encoder: Optional[Encoder],
                      dev: Optional[list[dict]] = None, selection: Optional[dict[str, float]] = None) -> Path:
    """Write everything into a scratch folder that replaces ``cfg.output_dir`` only once complete."""
    # datasets takes ~1 s to import; only this path needs it
    from datasets import Dataset

    rescored = bool(cfg.mining.rescore.cross_encoder)
    lexical = bool(mined) and all(q.lexical is not None for q in mined)
    judged = cfg.mining.judge.on
    columns = build_columns(data, doc_ids, doc_texts, mined, rescored, lexical, judged)
    counts = mine_counts(cfg, data, mined, tally)
    counts["queries_dev"] = len(dev or [])
    manifest = {
        "stage": "mine",
        "config": to_dict(cfg),
        "encoder": None if encoder is None else {"reference": encoder.resolved.reference,
                                                  "source": encoder.resolved.source,
                                                  "fingerprint": encoder.fingerprint},
        "inputs": data.inputs,
        "counts": counts,
        "versions": versions(),
        "git_commit": git_commit(),
        "processes": distributed.state().num_processes,  # accelerate launch --num_processes
        "outputs": {"dataset": "dataset", "columns": list(columns), "dev": DEV_FILE if dev else None},
        # held out of dataset/: training selects checkpoints and fits fusion on these
        "dev_query_ids": [r["query_id"] for r in dev or []],
        # first_stage.method=auto: each first stage's dev nDCG@10; config.first_stage.method holds the pick
        "first_stage_selection": selection,
        "first_stage": {"method": cfg.first_stage.method, "why": first_stage_why(cfg, selection)},
    }
    with atomic_output_dir(cfg.output_dir) as scratch:
        features = _features(rescored, lexical, judged)
        Dataset.from_dict(columns, features=features).save_to_disk(str(scratch / "dataset"))
        if dev:
            write_dev(scratch / DEV_FILE, dev)
        (scratch / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        write_json(scratch / MANIFEST, manifest)  # last: its presence means the folder is complete
    return Path(cfg.output_dir)

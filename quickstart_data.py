"""What the quickstart trains and evaluates on: the user's data, a test split, and which labels train.

``prepare_data`` finds the data (``--data``, ``--corpus/--queries/--qrels``, else the named BEIR data set),
converts shapes the stages do not read as they are (``retrieval/sources.py``), holds out a seeded test split when
the data has none (``data_prep/splits.py``), and resolves ``labels: auto``: the train labels where there are some,
cold start (synthetic labels) where the data has test labels only. It reads no model and encodes nothing.
What the labels imply for the first stage (``mines_behind_hybrid``) and why it was used are here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.splits import hold_out_test
from rerankforge.retrieval.download import resolve_dataset
from rerankforge.retrieval.sources import Source, beir_source, files_source, resolve_source

if TYPE_CHECKING:
    from rerankforge.quickstart import QuickstartConfig


@dataclass
class Prepared:
    """The data of one quickstart run: ``train``/``test`` are qrels files (``train`` None when only synthetic
    labels train); ``held_out`` is the record of the test split the quickstart carved (None when the data had one)."""

    source: Source
    labels: str  # real | synthetic | mixed
    test: Path
    train: Optional[Path] = None
    held_out: Optional[dict] = None
    notes: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every file the stages read, once each (the quickstart's input hash)."""
        return list(dict.fromkeys([*self.source.files(), *(p for p in (self.train, self.test) if p)]))

    def describe(self) -> dict:
        """For the quickstart's manifest."""
        return {"kind": self.source.kind, "origin": self.source.origin, "labels": self.labels,
                "corpus": str(self.source.corpus), "queries": str(self.source.queries),
                "train_qrels": str(self.train) if self.train else None, "test_qrels": str(self.test),
                "negatives": str(self.source.negatives) if self.source.negatives else None,
                "conversion": self.source.counts or None, "held_out_test_split": self.held_out}


def find_source(cfg: QuickstartConfig) -> Source:
    """The ``Source`` the config names (converted ones are written to ``<output_dir>/data``).

    Raises:
        DatasetNotFoundError: nothing found under that name or path. DataError: files missing, or a bad shape."""
    if cfg.corpus or cfg.queries or cfg.qrels:
        if cfg.data:
            raise DataError([Problem(f"give --data ({cfg.data}) or --corpus/--queries/--qrels, not both.")])
        return files_source(cfg.corpus, cfg.queries, cfg.qrels, "labels")
    if cfg.data:
        return resolve_source(cfg.data, Path(cfg.output_dir) / "data")
    cache = Path(cfg.mine.cache_dir).expanduser() if cfg.mine.cache_dir else None
    return beir_source(resolve_dataset(cfg.dataset, None, cache), cfg.dataset)


def _labels_to_split(source: Source, train_split: str) -> Path:
    """The qrels file a test split is carved from: the train split's, else the only one there is."""
    if train_split in source.qrels:
        return source.qrels[train_split]
    if len(source.qrels) == 1:
        return next(iter(source.qrels.values()))
    found = ", ".join(sorted(source.qrels)) or "none"
    raise DataError([Problem(f"no labels to train and test on: the qrels splits found are {found}. The quickstart "
                             f"reads mine.data.split={train_split} and eval.data.split=test (qrels/<split>.tsv): "
                             "name yours with these keys, or give one qrels file (--qrels) to split.",
                             str(source.folder or source.corpus))])


def prepare_data(cfg: QuickstartConfig) -> Prepared:
    """Find the data, hold out a test split where it has none, and resolve ``labels: auto``.

    Raises:
        DatasetNotFoundError, DataError: the data cannot be found or read, has no labels, or its labels do not fit
            ``labels``; the message says which key or flag fixes it."""
    source = find_source(cfg)
    train_split, test_split = cfg.mine.data.split, cfg.eval.data.split
    train, test = source.qrels.get(train_split), source.qrels.get(test_split)
    prepared = Prepared(source, cfg.labels, test, train)
    if test is None:
        if cfg.labels == "synthetic" and not source.qrels:
            raise DataError([Problem("labels=synthetic trains without labels, but the quickstart still measures the "
                                     f"reranker on labelled test queries: give qrels/{test_split}.tsv.",
                                     str(source.folder or source.corpus))])
        pool = _labels_to_split(source, train_split)
        out = Path(cfg.output_dir) / "split"
        prepared.held_out = hold_out_test(pool, cfg.mine.data.fields, cfg.test_fraction, cfg.mine.seed, out,
                                          (train_split, test_split))
        prepared.train, prepared.test = out / "qrels" / f"{train_split}.tsv", out / "qrels" / f"{test_split}.tsv"
        held = prepared.held_out
        prepared.notes.append(
            f"No test split in {source.origin}: held out {held['test_queries']} of {held['labelled_queries']} "
            f"labelled queries as the test split (test_fraction={cfg.test_fraction}, seed {cfg.mine.seed}; "
            f"{out / 'qrels'}). Training and checkpoint selection never see them.")
    if prepared.labels == "auto":
        prepared.labels = "real" if prepared.train else "synthetic"
        if not prepared.train:
            prepared.notes.append(f"{source.origin} has test labels only (qrels/{test_split}.tsv): training on "
                                  "synthetic queries (labels=synthetic, cold start); the test labels are read only "
                                  "by the evaluation.")
    if prepared.labels in ("real", "mixed") and not prepared.train:
        raise DataError([Problem(f"labels={prepared.labels} trains on qrels/{train_split}.tsv, which "
                                 f"{source.origin} lacks: set labels=synthetic (cold start: generated queries) or "
                                 "give training labels.", str(source.folder or source.corpus))])
    return prepared


def mines_behind_hybrid(cfg: QuickstartConfig, labels: str) -> bool:
    """Synthetic ``labels`` with ``mine.first_stage.method=auto``: synthetic dev queries share their passage's words
    and so cannot rank first stages reliably; hybrid is used instead."""
    return labels == "synthetic" and cfg.mine.first_stage.method == "auto"


def cold_start_note(cfg: QuickstartConfig, labels: str) -> Optional[str]:
    """The note saying so when ``mines_behind_hybrid`` (else None)."""
    if not mines_behind_hybrid(cfg, labels):
        return None
    return ("note: labels=synthetic with mine.first_stage.method=auto: mining with hybrid (RRF of BM25 and dense), "
            "since synthetic queries reuse their passage's words and picked the wrong first stage on SciFact and "
            "COVID-QA (by 0.01 nDCG@10). Set mine.first_stage.method=bm25|dense|hybrid to the first stage you will "
            "serve, or give query_log=FILE (your users' questions, no labels) and eval reranks the one the trained "
            "reranker's choices on them favour (docs/results.md: cold start).")


SYNTHETIC_FIRST_STAGE = (
    "labels=synthetic leaves no real labels to pick one with, and synthetic questions reuse their passage's words, "
    "which favours BM25; hybrid is the safer default, but where users' words rarely match the documents' dense can "
    "be better: set mine.first_stage.method, or give query_log (bench/README.md: lexical mismatch)")


def first_stage_reason(mine_manifest: dict) -> str:
    """Why the reranker was trained behind, and is served with, the first stage it was: mining's phrase for it
    (the summary, the eval report and the model card show it)."""
    return mine_manifest.get("first_stage", {}).get("why") or "not recorded by mining"

"""A user's data in the shapes people have it, as the BEIR files every stage reads.

``resolve_source`` takes what was given and returns a ``Source``: the corpus, queries and qrels files (one per
split), plus given negatives and gold answers when there are any.

- a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): read in place;
- single files (``--corpus``, ``--queries``, ``--qrels``; any format the loaders read): read in place, the qrels
  as one split (``labels``);
- sentence-transformers training rows, ``(query, positive)`` or ``(query, positive, negative, ...)``: a .jsonl,
  .json, .csv, .tsv or .parquet file, a folder saved with ``datasets``' ``save_to_disk``, or a dataset
  ``datasets.load_dataset`` reads (a Hub id, or a local folder laid out like one). Written under ``out`` as a BEIR
  folder: each distinct text once in the corpus, each distinct query once, its positives in the qrels and its
  negatives in ``negatives.jsonl``;
- a BEIR data set on the Hub (configs ``corpus`` and ``queries``, qrels as the ``default`` config or the dataset
  ``<id>-qrels``, as BeIR/* and mteb/* publish them): written under ``out`` likewise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from rerankforge.core.io import atomic_output_dir, write_json, write_jsonl_atomic, write_qrels_atomic
from rerankforge.core.problems import DataError, Problem
from rerankforge.core.readers import FORMATS, read_records
from rerankforge.retrieval.download import DatasetNotFoundError

logger = logging.getLogger(__name__)
TEST_SPLITS = ("test", "validation", "dev")  # the first one a dataset has is its held-out split
SCORE_COLUMNS = ("label", "labels", "score", "scores")


@dataclass
class Source:
    """The files of one data set. ``qrels`` maps a split name to its qrels file; ``folder`` is the BEIR folder the
    files lie in, when there is one (``answers.jsonl`` is looked for there)."""

    kind: str  # beir | files | sentence-transformers | hub-beir
    origin: str  # what the user gave
    corpus: Path
    queries: Path
    qrels: dict[str, Path]
    negatives: Optional[Path] = None
    folder: Optional[Path] = None
    counts: dict = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Every file the stages read from this source, for the quickstart's input hash."""
        answers = self.folder / "answers.jsonl" if self.folder else None
        extra = [p for p in (self.negatives, answers) if p and p.exists()]
        return [self.corpus, self.queries, *self.qrels.values(), *extra]


def is_beir(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file()


def beir_source(folder: Path, origin: str, kind: str = "beir") -> Source:
    """A BEIR folder read in place; its splits are the files in ``qrels/``."""
    qrels = {p.stem: p for p in sorted((folder / "qrels").glob("*.tsv"))} if (folder / "qrels").is_dir() else {}
    negatives = folder / "negatives.jsonl"
    return Source(kind, origin, folder / "corpus.jsonl", folder / "queries.jsonl", qrels,
                  negatives if negatives.exists() else None, folder)


def files_source(corpus: Optional[str], queries: Optional[str], qrels: Optional[str], split: str) -> Source:
    """Single files read in place, the qrels as split ``split``.

    Raises:
        DataError: a file is missing, or not all three were given."""
    given = {"corpus": corpus, "queries": queries, "qrels": qrels}
    problems = [Problem(f"--{name} is missing: give --corpus, --queries and --qrels together (or a BEIR folder as "
                        "--data).") for name, value in given.items() if not value]
    problems += [Problem(f"{name} file not found: {value}", value) for name, value in given.items()
                 if value and not Path(value).expanduser().exists()]
    if problems:
        raise DataError(problems)
    paths = {name: Path(value).expanduser() for name, value in given.items()}
    return Source("files", f"--corpus {corpus} --queries {queries} --qrels {qrels}", paths["corpus"], paths["queries"],
                  {split: paths["qrels"]})


def resolve_source(data: str, out: Path) -> Source:
    """The ``Source`` of ``data`` (a BEIR folder, a file or folder of sentence-transformers rows, or a dataset
    ``datasets.load_dataset`` reads); a converted one is written to ``out``.

    Raises:
        DatasetNotFoundError: nothing at that path, and no Hub dataset of that name can be had.
        DataError: rows of an unexpected shape (the columns found and the shapes expected).
    """
    path = Path(data).expanduser()
    if path.is_dir() and is_beir(path):
        return beir_source(path, data)
    halves = [name for name in ("corpus.jsonl", "queries.jsonl") if (path / name).is_file()]
    if path.is_dir() and halves:
        missing = "queries.jsonl" if halves == ["corpus.jsonl"] else "corpus.jsonl"
        raise DatasetNotFoundError(f"--data {data}: a BEIR folder needs corpus.jsonl and queries.jsonl, and {missing} "
                                   "is missing (qrels/<split>.tsv hold the labels).")
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        # datasets takes ~1 s to import; only this path needs it
        from datasets import Dataset, load_from_disk

        try:
            loaded = load_from_disk(str(path))
        except (OSError, ValueError) as exc:
            raise DataError([Problem(f"a folder saved with datasets' save_to_disk that does not load ({exc}).",
                                     data)]) from None
        splits = {"train": loaded} if isinstance(loaded, Dataset) else dict(loaded)
        return rows_to_beir({name: iter(rows) for name, rows in splits.items()}, out, data,
                            {name: rows.column_names for name, rows in splits.items()})
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise DataError([Problem(f"--data {data}: a file of sentence-transformers rows must be one of "
                                     f"{', '.join(FORMATS)}; or give a BEIR folder.", data)])
        problems: list[Problem] = []
        rows = [record for _, record in read_records(path, problems)]
        if problems:
            raise DataError(problems)
        return rows_to_beir({"train": iter(rows)}, out, data, {"train": list(rows[0]) if rows else []})
    if path.is_dir() and _is_text_folder(path):
        raise DatasetNotFoundError(f"--data {data}: a folder of .txt/.md files holds no queries or labels. The "
                                   "quickstart reads a BEIR folder, (query, positive[, negative ...]) rows, or "
                                   "--corpus/--queries/--qrels files; `rerankforge mine` reads a text folder as its "
                                   "data.corpus.")
    hub_id = data.count("/") == 1 and not data.startswith((".", "/", "~"))
    if path.is_dir() or (hub_id and not path.exists()):
        return load_with_datasets(data, out)
    raise DatasetNotFoundError(f"--data {data}: no such file or folder. Give a BEIR folder (corpus.jsonl, "
                               "queries.jsonl, qrels/<split>.tsv), a file or saved dataset of (query, positive[, "
                               "negative ...]) rows, or a Hugging Face dataset id.")


def _is_text_folder(path: Path) -> bool:
    """Text files (a README aside) and no table files: a corpus, not a dataset."""
    files = [p for p in path.rglob("*") if p.is_file()]
    texts = [p for p in files if p.suffix.lower() in (".txt", ".md") and p.name.lower() != "readme.md"]
    return bool(texts) and not any(p.suffix.lower() in FORMATS for p in files)


def load_with_datasets(reference: str, out: Path) -> Source:
    """A Hub dataset id (or a local folder laid out like one) through ``datasets.load_dataset``: BEIR-shaped when
    it has ``corpus`` and ``queries`` configs, else sentence-transformers rows in each split."""
    # datasets takes ~1 s to import; only this path needs it
    import datasets

    try:
        configs = datasets.get_dataset_config_names(reference)
        if {"corpus", "queries"} <= set(configs):
            return _hub_beir(reference, configs, out)
        loaded = datasets.load_dataset(reference)
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as exc:
        where = "a folder datasets.load_dataset" if Path(reference).expanduser().is_dir() else (
            "not a local file or folder, and datasets.load_dataset")
        raise DatasetNotFoundError(
            f"--data {reference}: {where} could not load it ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Check the id, or, without network, give a local copy: "
            "a BEIR folder, a file of (query, positive[, negative ...]) rows, or a folder saved with save_to_disk."
        ) from None
    return rows_to_beir({name: iter(rows) for name, rows in loaded.items()}, out, reference,
                        {name: rows.column_names for name, rows in loaded.items()})


def _hub_beir(reference: str, configs: list[str], out: Path) -> Source:
    """BEIR files from a Hub dataset with ``corpus`` and ``queries`` configs and qrels (``default`` or
    ``<id>-qrels``), written to ``out``."""
    # datasets takes ~1 s to import; only this path needs it
    import datasets

    qrels = datasets.load_dataset(reference if "default" in configs else f"{reference}-qrels",
                                  *(("default",) if "default" in configs else ()))
    with atomic_output_dir(out) as scratch:
        for name, fields in (("corpus", ("_id", "title", "text")), ("queries", ("_id", "text"))):
            rows = next(iter(datasets.load_dataset(reference, name).values()))
            write_jsonl_atomic(scratch / f"{name}.jsonl", ({f: str(row.get(f) or "") for f in fields} for row in rows))
        for split, rows in qrels.items():
            missing = {"query-id", "corpus-id", "score"} - set(rows.column_names)
            if missing:
                raise DataError([Problem(f"the qrels of {reference} ({split}) lack the columns {sorted(missing)}; "
                                         f"found {rows.column_names}. Expected BEIR's query-id, corpus-id, score.",
                                         reference)])
            labels: dict[str, dict[str, int]] = {}
            for r in rows:
                labels.setdefault(str(r["query-id"]), {})[str(r["corpus-id"])] = int(r["score"])
            write_qrels_atomic(scratch / "qrels" / f"{split}.tsv", labels)
        write_json(scratch / "manifest.json", {"source": reference, "kind": "hub-beir", "splits": sorted(qrels)})
    return beir_source(out, reference, "hub-beir")


def st_columns(columns: list[str], where: str) -> tuple[str, str, list[str]]:
    """(query, positive, negatives) columns of sentence-transformers rows: by position, as sentence-transformers
    reads them (the first is the query, the second its positive, the rest negatives).

    Raises:
        DataError: fewer than two columns, or a label/score column (pairs with scores are another shape)."""
    beir = [c for c in columns if c in ("_id", "query-id", "corpus-id")]
    if beir:
        raise DataError([Problem(f"columns {columns} are a BEIR corpus, queries or qrels file, not (query, positive"
                                 "[, negative ...]) rows: give their folder as --data, or the three files as --corpus, "
                                 "--queries and --qrels.", where)])
    scored = [c for c in columns if c.lower() in SCORE_COLUMNS]
    if scored or len(columns) < 2:
        raise DataError([Problem(
            f"expected sentence-transformers rows (query, positive) or (query, positive, negative, ...), got "
            f"columns {columns}" + (f"; a {scored[0]!r} column makes scored pairs, which are not read: keep the "
                                    "positive pairs and drop it" if scored else "") + ".", where)])
    return columns[0], columns[1], columns[2:]


def _texts(value) -> list[str]:
    """A cell as texts: a string, or a list of strings (a column holding several negatives)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def rows_to_beir(splits: dict[str, Iterable[dict]], out: Path, origin: str, columns: dict[str, list[str]]) -> Source:
    """Write sentence-transformers rows as a BEIR folder in ``out``: ids ``d<n>``/``q<n>`` by first appearance,
    relevance 1 for positives, given negatives in ``negatives.jsonl``. Splits: ``train`` and the first of
    ``TEST_SPLITS`` present (named ``test``); a test query whose text is also a training query is left out."""
    test = next((s for s in TEST_SPLITS if s in splits), None)
    kept = {"train": splits.get("train")} if "train" in splits else {}
    if test:
        kept["test"] = splits[test]
    if not kept:
        raise DataError([Problem(f"{origin}: no 'train' or test split among {sorted(splits)}.", origin)])
    ignored = sorted(set(splits) - {"train", test})
    if ignored:
        logger.warning("%s: splits %s are not read (only train and %s).", origin, ignored, test or "test")
    docs, queries, labels, negatives = {}, {}, {}, {}
    dropped = 0
    for split, rows in kept.items():
        query_col, positive_col, negative_cols = st_columns(columns[split if split != "test" else test],
                                                            f"{origin} ({split})")
        for row in rows:
            texts = _texts(row.get(query_col))
            if not texts:
                continue
            query = texts[0]
            if split == "test" and query in queries and queries[query] in labels.get("train", {}):
                dropped += 1
                continue
            qid = queries.setdefault(query, f"q{len(queries)}")
            for positive in _texts(row.get(positive_col)):
                labels.setdefault(split, {}).setdefault(qid, {})[docs.setdefault(positive, f"d{len(docs)}")] = 1
            for column in negative_cols:
                for negative in _texts(row.get(column)):
                    known = negatives.setdefault(qid, [])
                    doc_id = docs.setdefault(negative, f"d{len(docs)}")
                    if doc_id not in known:
                        known.append(doc_id)
    if dropped:
        logger.warning("%s: %d test rows ask a query of the train split and are left out of the test split.",
                       origin, dropped)
    counts = {"documents": len(docs), "queries": len(queries), "given_negatives": sum(map(len, negatives.values())),
              **{f"queries_{split}": len(qs) for split, qs in labels.items()}, "test_rows_dropped": dropped}
    with atomic_output_dir(out) as scratch:
        write_jsonl_atomic(scratch / "corpus.jsonl", ({"_id": i, "title": "", "text": t} for t, i in docs.items()))
        write_jsonl_atomic(scratch / "queries.jsonl", ({"_id": i, "text": t} for t, i in queries.items()))
        for split, by_query in labels.items():
            write_qrels_atomic(scratch / "qrels" / f"{split}.tsv", by_query)
        if negatives:
            write_jsonl_atomic(scratch / "negatives.jsonl", ({"query_id": q, "negative_ids": ds}
                                                             for q, ds in negatives.items()))
        write_json(scratch / "manifest.json", {"source": origin, "kind": "sentence-transformers",
                                               "columns": columns, "counts": counts})
    source = beir_source(out, origin, "sentence-transformers")
    source.counts = counts
    return source

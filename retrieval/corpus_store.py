"""A corpus kept in a memory-mapped Arrow table (HF ``datasets``), so Python memory does not grow with it.

``ArrowCorpus`` is a read-only ``Mapping`` ``{doc_id: {"title", "text"}}``, BEIR's shape, so every check and
stage that takes a corpus dict takes it unchanged. Its rows are sorted by id (the order ``sorted(corpus)`` gives a
dict), ``ids`` and ``texts`` read them by row without copying the table into Python objects, and an id is found
by bisection on the sorted id column instead of a dict of every id.

The table is built once per corpus file and field names under ``<cache_dir>/corpus/<key>/`` (``save_to_disk``),
together with the problems met while reading it, and memory-mapped by every later stage (``load_from_disk``).
``data.storage=auto`` picks it for corpus files of ``ARROW_AUTO_BYTES`` or more.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from rerankforge.core.io import hash_path, hash_strings
from rerankforge.core.problems import Problem, first_few
from rerankforge.core.readers import read_records, record_field
from rerankforge.core.text import doc_text

ARROW_AUTO_BYTES = 256 * 2**20
LAYOUT = "1"  # bump when the stored columns change, so old caches are rebuilt
READ_BATCH = 4096  # rows converted to Python at a time while iterating
PROBLEMS_FILE = "problems.json"


class IdColumn(Sequence):
    """The sorted ``_id`` column, read by row; ``row(doc_id)`` bisects it."""

    def __init__(self, column):
        self._column = column  # pyarrow.ChunkedArray

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._column[i].to_pylist()
        return self._column[int(i)].as_py()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), READ_BATCH):
            yield from self._column.slice(start, READ_BATCH).to_pylist()

    def row(self, doc_id: str) -> Optional[int]:
        """The row of ``doc_id``, or None when the corpus has no such id."""
        i = bisect.bisect_left(self, doc_id)
        return i if i < len(self) and self[i] == doc_id else None

    def find(self, doc_id) -> int:
        """The row of ``doc_id``; KeyError when the corpus has no such id (or it is not a string)."""
        row = self.row(doc_id) if isinstance(doc_id, str) else None
        if row is None:
            raise KeyError(doc_id)
        return row


class DocTexts(Sequence):
    """The text a model sees for each row, ``title + " " + text`` (``core.text.doc_text``), read on demand."""

    def __init__(self, table):
        self._table = table.select(["title", "text"])  # pyarrow.Table

    def __len__(self) -> int:
        return self._table.num_rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(range(*i.indices(len(self))))
        return self.take([int(i)])[0]

    def take(self, rows) -> list[str]:
        """The texts of ``rows`` (any order, repeats allowed), in that order."""
        # row by row: Table.take costs time in proportion to the table's chunks (one per ~1,000 rows)
        titles, texts = self._table["title"], self._table["text"]
        return [doc_text({"title": titles[r].as_py(), "text": texts[r].as_py()}) for r in map(int, rows)]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), READ_BATCH):
            yield from _texts(self._table.slice(start, READ_BATCH))


def _texts(table) -> list[str]:
    return [doc_text({"title": t, "text": x}) for t, x in zip(table["title"].to_pylist(), table["text"].to_pylist())]


class ArrowCorpus(Mapping):
    """A BEIR corpus over a memory-mapped ``datasets.Dataset`` with string columns ``_id``, ``title``, ``text``
    sorted by ``_id``."""

    def __init__(self, dataset):
        self.dataset = dataset
        table = dataset.data.table
        self.ids = IdColumn(table["_id"])
        self.texts = DocTexts(table)
        self._table = table

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __contains__(self, doc_id) -> bool:
        return isinstance(doc_id, str) and self.ids.row(doc_id) is not None

    def __getitem__(self, doc_id: str) -> dict[str, str]:
        row = self.ids.find(doc_id)
        return {"title": self._table["title"][row].as_py(), "text": self._table["text"][row].as_py()}

    def items(self) -> Iterator[tuple[str, dict[str, str]]]:
        """``(doc_id, {"title", "text"})`` in row order, read a batch at a time (no lookup per id)."""
        for start in range(0, len(self), READ_BATCH):
            batch = self._table.slice(start, READ_BATCH).to_pydict()
            for doc_id, title, text in zip(batch["_id"], batch["title"], batch["text"]):
                yield doc_id, {"title": title, "text": text}


def corpus_ids(corpus: Mapping) -> Sequence[str]:
    """The corpus's ids in sorted order: the Arrow id column itself, or a sorted list of a dict's keys."""
    return corpus.ids if isinstance(corpus, ArrowCorpus) else sorted(corpus)


def corpus_texts(corpus: Mapping, ids: Sequence[str]) -> Sequence[str]:
    """The model text of each id of ``ids`` (from ``corpus_ids``), row for row."""
    return corpus.texts if isinstance(corpus, ArrowCorpus) else [doc_text(corpus[d]) for d in ids]


def row_finder(ids: Sequence[str]) -> Callable[[str], int]:
    """``doc_id -> row`` over ``ids``: bisection on an Arrow id column, else a dict (KeyError when unknown)."""
    if isinstance(ids, IdColumn):
        return ids.find
    return {d: i for i, d in enumerate(ids)}.__getitem__


def take_texts(texts: Sequence[str], rows) -> list[str]:
    """``[texts[r] for r in rows]``, as one Arrow ``take`` when ``texts`` is a ``DocTexts``."""
    return texts.take(rows) if isinstance(texts, DocTexts) else [texts[r] for r in rows]


def use_arrow(path: Path, storage: str) -> bool:
    """Whether ``data.storage`` (auto | memory | arrow) puts the corpus at ``path`` in Arrow."""
    if storage == "auto":
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return size >= ARROW_AUTO_BYTES
    return storage == "arrow"


def load_arrow_corpus(path: str | Path, fields, cache_dir: Path, problems: list[Problem]) -> ArrowCorpus:
    """The corpus at ``path`` (any format ``readers.read_records`` reads) as an ``ArrowCorpus``, built once.

    Records without an id or a text, malformed lines and duplicate ids become ``problems`` with their file and
    line, as ``loaders.load_corpus`` reports them; they are stored with the table and reported again on every load.
    """
    # datasets takes ~1 s to import; only this path needs it
    from datasets import load_from_disk

    path = Path(path)
    key = hash_strings([LAYOUT, hash_path(path), json.dumps(vars(fields), sort_keys=True)])[:20]
    folder = Path(cache_dir) / "corpus" / key
    if not (folder / PROBLEMS_FILE).exists():
        _build(path, fields, folder)
    stored = json.loads((folder / PROBLEMS_FILE).read_text(encoding="utf-8"))
    problems.extend(Problem(**p) for p in stored)
    return ArrowCorpus(load_from_disk(str(folder)))


def _records(path: Path, fields, problems: list[Problem]) -> Iterator[dict]:
    for line, record in read_records(path, problems):
        doc_id = record_field(record, fields.id, path, line, problems)
        text = record_field(record, fields.text, path, line, problems)
        if doc_id is not None and text is not None:
            yield {"_id": doc_id, "title": str(record.get(fields.title) or ""), "text": text}


def _write_unsorted(path: Path, fields, target: Path, problems: list[Problem]) -> None:
    """Stream the records into an Arrow IPC stream file, ``READ_BATCH`` at a time (constant memory)."""
    schema = pa.schema([("_id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    batch: list[dict] = []
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for record in _records(path, fields, problems):
            batch.append(record)
            if len(batch) == READ_BATCH:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))


def _duplicates(ids) -> list[str]:
    """Ids that occur more than once in the sorted id column ``ids`` (pyarrow)."""
    if len(ids) < 2:
        return []
    same = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    return sorted(set(pc.filter(ids.slice(1), same).to_pylist()))


def _build(path: Path, fields, folder: Path) -> None:
    """Read, sort by id and save the corpus with its problems; the folder appears only once complete."""
    # datasets takes ~1 s to import; only this path needs it
    from datasets import Dataset, load_from_disk

    tmp = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    problems: list[Problem] = []
    _write_unsorted(path, fields, tmp / "unsorted.arrow", problems)
    Dataset.from_file(str(tmp / "unsorted.arrow")).sort("_id").save_to_disk(str(tmp / "table"))
    dupes = _duplicates(load_from_disk(str(tmp / "table")).data.table["_id"])
    if dupes:
        problems.append(Problem(f"{len(dupes)} duplicate document id(s): {first_few(dupes)}. Ids must be unique.",
                                str(path)))
    (tmp / "table" / PROBLEMS_FILE).write_text(json.dumps([vars(p) for p in problems]), encoding="utf-8")
    try:
        os.replace(tmp / "table", folder)
    except OSError:  # another process stored the same corpus first
        pass
    shutil.rmtree(tmp, ignore_errors=True)


class TextsById(Mapping):
    """``{doc_id: model text}`` of an ``ArrowCorpus``, read on demand; ``rows`` holds them in row order."""

    def __init__(self, corpus: ArrowCorpus):
        self._ids, self.rows = corpus.ids, corpus.texts

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __getitem__(self, doc_id: str) -> str:
        return self.rows[self._ids.find(doc_id)]


def texts_by_id(corpus: Mapping, ids: Sequence[str]) -> Mapping[str, str]:
    """``{doc_id: model text}`` for ``ids`` (from ``corpus_ids``): a dict, or a lazy view of an ``ArrowCorpus``."""
    return TextsById(corpus) if isinstance(corpus, ArrowCorpus) else {d: doc_text(corpus[d]) for d in ids}


def texts_in_order(texts: Mapping[str, str], ids: Sequence[str]) -> Sequence[str]:
    """``[texts[d] for d in ids]``, without a copy when ``texts`` is an Arrow view over exactly ``ids``."""
    if isinstance(texts, TextsById) and ids is texts._ids:
        return texts.rows
    return [texts[d] for d in ids]

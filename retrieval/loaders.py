"""Load corpus, queries and qrels into BEIR's in-memory shapes.

- corpus: ``{doc_id: {"title": str, "text": str}}``
- queries: ``{query_id: text}``
- qrels: ``{query_id: {doc_id: relevance}}``

Loaders append every problem they meet to a list, so the caller can report all of them together.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Optional

from rerankforge.core import distributed
from rerankforge.core.problems import DataError, Problem, first_few
from rerankforge.core.readers import not_text_problem, read_records, record_field
from rerankforge.retrieval.chunking import TokenSpans, chunk_text
from rerankforge.retrieval.config import ChunkConfig, DataConfig, FieldNames
from rerankforge.retrieval.corpus_store import load_arrow_corpus, use_arrow

Corpus = dict[str, dict[str, str]]
Queries = dict[str, str]
Qrels = dict[str, dict[str, int]]
TEXT_SUFFIXES = (".txt", ".md")


def _report_duplicates(kind: str, counts: Counter, path: Path, problems: list[Problem]) -> None:
    dupes = [key for key, n in counts.items() if n > 1]
    if dupes:
        problems.append(Problem(f"{len(dupes)} duplicate {kind} id(s): {first_few(dupes)}. Ids must be unique.",
                                str(path)))


def _load_texts_by_id(path: Path, fields: FieldNames, kind: str, problems: list[Problem],
                      make: Callable[[dict, str], object]) -> dict:
    """``{id: make(record, text)}`` from every record that has both an id and a text field."""
    out, seen = {}, Counter()
    for line, record in read_records(path, problems):
        item_id = record_field(record, fields.id, path, line, problems)
        text = record_field(record, fields.text, path, line, problems)
        if item_id is None or text is None:
            continue
        seen[item_id] += 1
        out[item_id] = make(record, text)
    _report_duplicates(kind, seen, path, problems)
    return out


def load_corpus(path: str | Path, fields: FieldNames, problems: list[Problem]) -> Corpus:
    """Corpus from a table file or saved HF dataset; the title field is optional."""
    return _load_texts_by_id(Path(path), fields, "document", problems,
                             lambda record, text: {"title": str(record.get(fields.title) or ""), "text": text})


def load_queries(path: str | Path, fields: FieldNames, problems: list[Problem]) -> Queries:
    return _load_texts_by_id(Path(path), fields, "query", problems, lambda record, text: text)


def load_query_texts(path: str | Path, fields: FieldNames) -> list[str]:
    """The texts of a file of queries without labels (a query log): BEIR queries ``.jsonl``, or ``.txt`` with one
    per line (blank lines skipped), in file order.

    Raises:
        DataError: the file is missing, not text, or has malformed lines (all at once)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError([Problem(f"queries file not found: {path}", str(path))])
    if path.suffix == ".txt":
        try:
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise DataError([not_text_problem(path)]) from None
    problems: list[Problem] = []
    texts = list(load_queries(path, fields, problems).values())
    if problems:
        raise DataError(problems)
    return texts


def load_qrels(path: str | Path, fields: FieldNames, problems: list[Problem]) -> Qrels:
    """Qrels as ``{query_id: {doc_id: relevance}}``; relevance must be an integer."""
    path, qrels = Path(path), {}
    for line, record in read_records(path, problems):
        query_id = record_field(record, fields.query_id, path, line, problems)
        doc_id = record_field(record, fields.doc_id, path, line, problems)
        raw = record_field(record, fields.score, path, line, problems)
        if query_id is None or doc_id is None or raw is None:
            continue
        try:
            relevance = int(float(raw))
        except ValueError:
            problems.append(Problem(f"relevance '{raw}' is not a number.", str(path), line))
            continue
        qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def load_negatives(path: str | Path, problems: list[Problem]) -> dict[str, list[str]]:
    """Given negatives, ``{query_id: [doc_id, ...]}``, from JSONL lines ``{"query_id": ..., "negative_ids": [...]}``."""
    path, negatives = Path(path), {}
    for line, record in read_records(path, problems):
        query_id, ids = record.get("query_id"), record.get("negative_ids")
        if query_id is None or not isinstance(ids, list):
            problems.append(Problem('expected {"query_id": "<id>", "negative_ids": ["<doc id>", ...]}, got keys '
                                    f"{sorted(record)}.", str(path), line))
            continue
        known = negatives.setdefault(str(query_id), [])
        for doc_id in map(str, ids):
            if doc_id not in known:
                known.append(doc_id)
    return negatives


def load_text_folder(folder: str | Path, chunking: ChunkConfig, token_spans: Optional[TokenSpans] = None,
                     problems: Optional[list[Problem]] = None) -> Corpus:
    """Corpus from every .txt/.md file under ``folder``. With ``chunking.mode=folders`` (default) passage ids are
    ``<relative path>#<index>``; otherwise each file is one document ``<relative path>`` (``mode=all`` chunks it
    later, keeping the document as the unit). A file that is not UTF-8 text is left out, with a problem."""
    folder, corpus = Path(folder), {}
    for file in sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()):
        relative = file.relative_to(folder).as_posix()
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            if problems is None:
                raise
            problems.append(not_text_problem(file))
            continue
        title = file.stem.replace("_", " ")
        if chunking.mode != "folders":
            corpus[relative] = {"title": title, "text": text}
            continue
        for index, passage in enumerate(chunk_text(text, chunking, token_spans)):
            corpus[f"{relative}#{index}"] = {"title": title, "text": passage}
    return corpus


def _is_text_folder(path: Path) -> bool:
    return path.is_dir() and not (path / "state.json").exists() and not (path / "dataset_dict.json").exists()


def qrels_name(split: str) -> str:
    """Where a BEIR folder keeps a split's qrels: ``qrels/<split>.tsv``."""
    return f"qrels/{split}.tsv"


def beir_file(folder: Optional[str | Path], explicit: Optional[str], name: Optional[str]) -> Optional[Path]:
    """The file a data block names: ``explicit`` when given, else ``<folder>/<name>`` in the BEIR layout
    (``corpus.jsonl``, ``queries.jsonl``, ``qrels_name(split)``, ``answers.jsonl``); None when neither is there."""
    if explicit:
        return Path(explicit).expanduser()
    return Path(folder).expanduser() / name if folder and name else None


def resolve_paths(data: DataConfig) -> dict[str, Optional[Path]]:
    """The corpus, queries, qrels and eval-qrels files that ``data`` points at (BEIR layout under ``path``)."""
    return {
        "corpus": beir_file(data.path, data.corpus, "corpus.jsonl"),
        "queries": beir_file(data.path, data.queries, "queries.jsonl"),
        "qrels": beir_file(data.path, data.qrels, qrels_name(data.split)),
        "eval_qrels": beir_file(data.path, data.eval_qrels, qrels_name(data.eval_split) if data.eval_split else None),
        "negatives": beir_file(data.path, data.negatives, None),
    }


def load_corpus_any(path: Path, data: DataConfig, problems: list[Problem],
                    token_spans: Optional[TokenSpans] = None, cache_dir: Optional[Path] = None) -> Corpus:
    """A corpus file, a saved HF dataset, or a folder of text files; with ``cache_dir``, a corpus file that
    ``data.storage`` puts in Arrow comes back as a memory-mapped ``corpus_store.ArrowCorpus``."""
    if _is_text_folder(path):
        return load_text_folder(path, data.chunking, token_spans, problems)
    return load_corpus_stored(path, data.fields, data.storage, problems, cache_dir)


def load_corpus_stored(path: Path, fields: FieldNames, storage: str, problems: list[Problem],
                       cache_dir: Optional[Path]) -> Corpus:
    """``load_corpus``, or the Arrow-backed corpus when ``storage`` (auto | memory | arrow) asks for it."""
    if cache_dir is not None and path.exists() and use_arrow(path, storage):
        with distributed.main_first():  # under accelerate launch the main process builds the table once
            return load_arrow_corpus(path, fields, cache_dir, problems)
    return load_corpus(path, fields, problems)

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

from rerankforge.data_prep.config import ChunkConfig, DataConfig, FieldNames
from rerankforge.data_prep.problems import Problem, first_few
from rerankforge.data_prep.readers import read_records

Corpus = dict[str, dict[str, str]]
Queries = dict[str, str]
Qrels = dict[str, dict[str, int]]
# text -> list of (start, end) character spans of its tokens; used to chunk text files by tokens.
TokenSpans = Callable[[str], list[tuple[int, int]]]
TEXT_SUFFIXES = (".txt", ".md")


def _field(record: dict, name: str, path: Path, line: int, problems: list[Problem]) -> Optional[str]:
    value = record.get(name)
    if value is None:
        problems.append(Problem(f"missing field '{name}' (fields present: {', '.join(map(str, record))}). "
                                f"Set data.fields to the names your file uses.", str(path), line))
        return None
    return str(value)


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
        item_id = _field(record, fields.id, path, line, problems)
        text = _field(record, fields.text, path, line, problems)
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


def load_qrels(path: str | Path, fields: FieldNames, problems: list[Problem]) -> Qrels:
    """Qrels as ``{query_id: {doc_id: relevance}}``; relevance must be an integer."""
    path, qrels = Path(path), {}
    for line, record in read_records(path, problems):
        query_id = _field(record, fields.query_id, path, line, problems)
        doc_id = _field(record, fields.doc_id, path, line, problems)
        raw = _field(record, fields.score, path, line, problems)
        if query_id is None or doc_id is None or raw is None:
            continue
        try:
            relevance = int(float(raw))
        except ValueError:
            problems.append(Problem(f"relevance '{raw}' is not a number.", str(path), line))
            continue
        qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` windows of ``size`` units over ``length`` units, consecutive ones sharing ``overlap``."""
    return [(start, min(start + size, length)) for start in range(0, max(length - overlap, 1), size - overlap)
            if start < length]


def chunk_text(text: str, chunking: ChunkConfig, token_spans: Optional[TokenSpans] = None) -> list[str]:
    """Split ``text`` into windows of ``chunking.size`` tokens (or chars) overlapping by ``chunking.overlap``.

    Passages are slices of the original text, so nothing is re-tokenized or normalised.
    """
    if chunking.unit == "chars":
        pieces = [text[s:e] for s, e in windows(len(text), chunking.size, chunking.overlap)]
    else:
        if token_spans is None:
            raise ValueError("data.chunking.unit=tokens needs a tokenizer; none was given.")
        spans = token_spans(text)
        pieces = [text[spans[s][0]:spans[e - 1][1]] for s, e in windows(len(spans), chunking.size, chunking.overlap)]
    return [p.strip() for p in pieces if p.strip()]


def load_text_folder(folder: str | Path, chunking: ChunkConfig, token_spans: Optional[TokenSpans] = None) -> Corpus:
    """Corpus from every .txt/.md file under ``folder``; passage ids are ``<relative path>#<index>``."""
    folder, corpus = Path(folder), {}
    for file in sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()):
        relative = file.relative_to(folder).as_posix()
        title = file.stem.replace("_", " ")
        for index, passage in enumerate(chunk_text(file.read_text(encoding="utf-8"), chunking, token_spans)):
            corpus[f"{relative}#{index}"] = {"title": title, "text": passage}
    return corpus


def _is_text_folder(path: Path) -> bool:
    return path.is_dir() and not (path / "state.json").exists() and not (path / "dataset_dict.json").exists()


def resolve_paths(data: DataConfig) -> dict[str, Optional[Path]]:
    """The corpus, queries, qrels and eval-qrels files that ``data`` points at (BEIR layout under ``path``)."""
    base = Path(data.path).expanduser() if data.path else None

    def pick(explicit: Optional[str], beir_name: Optional[str]) -> Optional[Path]:
        if explicit:
            return Path(explicit).expanduser()
        return base / beir_name if base is not None and beir_name else None

    return {
        "corpus": pick(data.corpus, "corpus.jsonl"),
        "queries": pick(data.queries, "queries.jsonl"),
        "qrels": pick(data.qrels, f"qrels/{data.split}.tsv"),
        "eval_qrels": pick(data.eval_qrels, f"qrels/{data.eval_split}.tsv" if data.eval_split else None),
    }


def load_corpus_any(path: Path, data: DataConfig, problems: list[Problem],
                    token_spans: Optional[TokenSpans] = None) -> Corpus:
    """A corpus file, a saved HF dataset, or a folder of text files."""
    if _is_text_folder(path):
        return load_text_folder(path, data.chunking, token_spans)
    return load_corpus(path, data.fields, problems)

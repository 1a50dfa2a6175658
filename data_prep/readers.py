"""Read table-shaped files row by row: .jsonl, .tsv, .csv, .parquet, or a saved HF dataset folder.

Each reader yields ``(line, record)`` so that a bad record can be reported with its file and line, and
appends a ``Problem`` for every malformed line instead of stopping at the first.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from rerankforge.data_prep.problems import Problem

Record = dict[str, object]
FORMATS = (".jsonl", ".json", ".tsv", ".csv", ".parquet")


def _read_jsonl(path: Path, problems: list[Problem]) -> Iterator[tuple[int, Record]]:
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"malformed JSON ({exc.msg} at column {exc.colno}).", str(path), line_no))
                continue
            if not isinstance(record, dict):
                problems.append(Problem(f"expected a JSON object, got {type(record).__name__}.", str(path), line_no))
                continue
            yield line_no, record


def _read_delimited(path: Path, delimiter: str, problems: list[Problem]) -> Iterator[tuple[int, Record]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            line_no = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(Problem(
                    f"expected {len(header)} columns ({', '.join(header)}), got {len(row)}.", str(path), line_no))
                continue
            yield line_no, dict(zip(header, row))


def _read_rows(rows) -> Iterator[tuple[int, Record]]:
    for index, record in enumerate(rows, start=1):
        yield index, dict(record)


def _read_hf_dataset(path: Path, problems: list[Problem]) -> Iterator[tuple[int, Record]]:
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(path))
    if isinstance(data, DatasetDict):
        if len(data) != 1:
            problems.append(Problem(
                f"a saved DatasetDict with splits {sorted(data)}; point at one split's folder instead, "
                f"e.g. {path / sorted(data)[0]}.", str(path)))
            return
        data = next(iter(data.values()))
    yield from _read_rows(data)


def read_records(path: str | Path, problems: list[Problem]) -> Iterator[tuple[int, Record]]:
    """Yield ``(line_or_row_number, record)`` from ``path``.

    Malformed lines, a missing path and an unsupported file type become entries of ``problems``; nothing raises.
    """
    path = Path(path)
    if not path.exists():
        problems.append(Problem("no such file or folder.", str(path)))
        return
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            yield from _read_hf_dataset(path, problems)
        else:
            problems.append(Problem("a folder, but not a saved Hugging Face dataset (no state.json).", str(path)))
        return
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from _read_jsonl(path, problems)
    elif suffix in (".tsv", ".csv"):
        yield from _read_delimited(path, "\t" if suffix == ".tsv" else ",", problems)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from _read_rows(pq.read_table(path).to_pylist())
    else:
        problems.append(Problem(f"unsupported file type '{suffix}'. Expected one of {', '.join(FORMATS)}, "
                                "or a folder saved with datasets' save_to_disk.", str(path)))

"""Read table-shaped files row by row: .jsonl, .tsv, .csv, .parquet, or a saved HF dataset folder.

Each reader yields ``(line, record)`` so that a bad record can be reported with its file and line, and
appends a ``Problem`` for every malformed line instead of stopping at the first. Text files must be UTF-8: a
binary file, or text in another encoding, is one problem naming the byte offset and how to re-encode it.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from rerankforge.core.problems import Problem

Record = dict[str, object]
FORMATS = (".jsonl", ".json", ".tsv", ".csv", ".parquet")
# leading bytes of files that are sometimes given where text is expected
SIGNATURES = {b"\x1f\x8b": "gzip-compressed: decompress it first (gunzip)", b"PK\x03\x04": "a zip archive: unzip it",
              b"%PDF": "a PDF: extract its text first", b"PAR1": "Parquet: name it .parquet",
              b"\xff\xfe": "UTF-16 text: iconv -f utf-16 -t utf-8 FILE > FILE.utf8 re-encodes it",
              b"\xfe\xff": "UTF-16 text: iconv -f utf-16 -t utf-8 FILE > FILE.utf8 re-encodes it"}


def _line_of(path: Path, offset: int) -> int:
    line = 1
    with open(path, "rb") as fh:
        while offset > 0:
            block = fh.read(min(1 << 20, offset))
            if not block:
                break
            line, offset = line + block.count(b"\n"), offset - len(block)
    return line


def first_undecodable(path: Path) -> Optional[tuple[int, int]]:
    """``(byte offset, byte)`` of the first byte of ``path`` that is not UTF-8, or None when it all decodes."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0  # offset: where ``pending + block`` starts
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            data = decoder.getstate()[0] + block  # bytes of a character cut at the last block's end come first
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return offset + exc.start, data[exc.start]
            if not block:
                return None
            offset += len(data) - len(decoder.getstate()[0])


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8192)


def _binary_kind(head: bytes) -> Optional[str]:
    """What a file whose first bytes are ``head`` is, when they show it is not text (None: it may be text)."""
    kind = next((what for signature, what in SIGNATURES.items() if head.startswith(signature)), None)
    return kind or ("binary data" if b"\x00" in head else None)


def not_text_problem(path: Path) -> Optional[Problem]:
    """Why ``path`` is not UTF-8 text, or None when it is: binary data (a NUL byte, or a known file signature in
    its first bytes), or bytes another encoding wrote, with the offset and the command that re-encodes it."""
    head = _head(path)
    kind = _binary_kind(head)
    if kind:
        return Problem(f"not UTF-8 text ({kind}; first bytes {head[:8].hex(' ')}). Expected UTF-8 "
                       f"text ({', '.join(FORMATS[:4])}), a .parquet file, or a folder saved with datasets' "
                       "save_to_disk.", str(path))
    found = first_undecodable(path)
    if found is None:
        return None
    offset, byte = found
    # 0x80-0x9f are control characters in Latin-1 but letters and quotes in Windows-1252
    source = "cp1252" if 0x80 <= byte <= 0x9F else "latin1"
    return Problem(f"not UTF-8: byte 0x{byte:02x} at byte offset {offset:,} (line {_line_of(path, offset)}) cannot be "
                   "decoded; the file was written in another encoding (Latin-1 or Windows-1252, most often). "
                   f"Re-encode it as UTF-8 and point the config at the new file: iconv -f {source} -t utf-8 {path} > "
                   f"{path.with_name(path.stem + '.utf8' + path.suffix)}", str(path))


def _decoding(path: Path, problems: list[Problem],
              records: Iterator[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """``records`` as they come; a file that turns out not to be UTF-8 text ends them with one problem."""
    try:
        yield from records
    except UnicodeDecodeError:
        problems.append(not_text_problem(path) or Problem("not UTF-8 text.", str(path)))


def _read_jsonl(path: Path, problems: list[Problem]) -> Iterator[tuple[int, Record]]:
    with open(path, encoding="utf-8-sig") as fh:  # -sig: a byte-order mark (Excel, Notepad) is not data
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
    with open(path, encoding="utf-8-sig", newline="") as fh:
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
    # datasets takes ~1 s to import; only this path needs it
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
    if suffix in (".jsonl", ".json", ".tsv", ".csv"):
        if _binary_kind(_head(path)):  # not text at all: one problem, not one per line
            problems.append(not_text_problem(path))
        elif suffix in (".jsonl", ".json") and _head(path).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            problems.append(Problem("a JSON array; expected JSON Lines, one object a line. Convert it: jq -c '.[]' "
                                    f"{path} > {path.with_name(path.stem + '.jsonl')}", str(path)))
        elif suffix in (".jsonl", ".json"):
            yield from _decoding(path, problems, _read_jsonl(path, problems))
        else:
            yield from _decoding(path, problems, _read_delimited(path, "\t" if suffix == ".tsv" else ",", problems))
    elif suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            problems.append(Problem(f"not a readable Parquet file ({exc}).", str(path)))
            return
        yield from _read_rows(table.to_pylist())
    else:
        problems.append(Problem(f"unsupported file type '{suffix}'. Expected one of {', '.join(FORMATS)}, "
                                "or a folder saved with datasets' save_to_disk.", str(path)))


def record_field(record: dict, name: str, path: Path, line: int, problems: list[Problem]) -> Optional[str]:
    value = record.get(name)
    if value is None:
        problems.append(Problem(f"missing field '{name}' (fields present: {', '.join(map(str, record))}). "
                                f"Set data.fields to the names your file uses.", str(path), line))
        return None
    return str(value)

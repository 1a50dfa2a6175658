"""Mining speed and memory: rerankforge vs sentence-transformers' ``util.mine_hard_negatives``, same settings.

    python bench/mining.py [--data ../shared/data/scifact] [--batch-size 64] [--max-queries N] [--repeats 2]
                           [--sides sentence-transformers rerankforge rerankforge-openvino rerankforge-openvino-bf16 ...]

Each side runs in its own process from a cold embedding cache (peak RSS is per process) and mines the
same train queries with the same model, range_max, relative_margin, num_negatives and FAISS flat index.
The rerankforge sides differ only in the encoder: torch float32, OpenVINO float32, OpenVINO in bfloat16 precision
(``encoder.dtype=bfloat16``; AMX), OpenVINO static int8 (``encoder.quantize=int8``; calibration runs inside the
timed total).
Prints one table: encode docs/s, search ms/query, total wall time, peak RSS, negatives; then each rerankforge
side's wall-time ratio to sentence-transformers, and how many of the torch runs' negatives each side mined too.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from common import ROOT, data_dir

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# side -> encoder overrides of the rerankforge sides; sentence-transformers runs its own miner
SIDES = {"sentence-transformers": None, "rerankforge": [],
         "rerankforge-openvino": ["first_stage.encoder.backend=openvino"],
         "rerankforge-openvino-bf16": ["first_stage.encoder.backend=openvino", "first_stage.encoder.dtype=bfloat16"],
         "rerankforge-openvino-int8": ["first_stage.encoder.backend=openvino", "first_stage.encoder.quantize=int8"]}


class Timer:
    """Accumulates the wall time and item count of wrapped calls."""

    def __init__(self):
        self.seconds, self.items = 0.0, 0

    def wrap(self, fn, count):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.items += count(*args, **kwargs)
        return timed


def mine_config(args, out_dir: Path, cache_dir: Path, encoder: Sequence[str] = ()):
    from rerankforge.core.config import load_config
    from rerankforge.data_prep.config import MineConfig

    return load_config(MineConfig, ROOT / "configs" / "data_prep" / "scifact.yaml", [
        f"data.path={args.data}", f"first_stage.encoder.batch_size={args.batch_size}", f"output_dir={out_dir}",
        f"cache_dir={cache_dir}", f"max_queries={args.max_queries or 'null'}",
        # like for like with sentence-transformers' dense miner: no dev split, float32 encoding
        "first_stage.method=dense", "data.dev_fraction=0", "first_stage.encoder.dtype=float32", *encoder])


def run_ours(args, tmp: Path) -> dict:
    import faiss  # noqa: F401  (libraries are imported before the clock starts, as on the other side)
    import sentence_transformers  # noqa: F401
    from datasets import load_from_disk

    import rerankforge.retrieval.encode as encode
    import rerankforge.retrieval.index as index
    from rerankforge.data_prep.mine import mine

    enc, srch = Timer(), Timer()
    original_encode = encode.encode_to_file
    encode.encode_to_file = enc.wrap(original_encode, lambda e, texts, path, *a, **k: len(texts)
                                     if path.name.startswith("corpus") else 0)
    # only corpus encoding counts towards docs/s; queries are timed with it as in the ST run
    index.search = srch.wrap(index.search, lambda idx, queries, k, **kw: len(queries))
    start = time.perf_counter()
    out = mine(mine_config(args, tmp / "out", tmp / "cache", SIDES[args.side]))
    total = time.perf_counter() - start
    rows = load_from_disk(str(out / "dataset"))
    mined = {f"{r['query']}\t{r['positive']}": [n for n, kind in zip(r["negatives"], r["negative_kinds"])
                                               if kind == "hard"] for r in rows}
    return {"encode_seconds": enc.seconds, "docs": enc.items, "search_seconds": srch.seconds,
            "queries": srch.items, "total_seconds": total, "negatives": sum(map(len, mined.values())),
            "mined": mined}


def run_theirs(args, tmp: Path) -> dict:
    import faiss
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from rerankforge.core.text import doc_text
    from rerankforge.data_prep.mine import load_labelled_data
    from rerankforge.models.resolve import resolve_model

    cfg = mine_config(args, tmp / "out", tmp / "cache")
    start = time.perf_counter()
    data = load_labelled_data(cfg)
    corpus = [doc_text(data.corpus[d]) for d in sorted(data.corpus)]
    pairs = Dataset.from_dict({"query": [data.queries[q] for q in data.positives for _ in data.positives[q]],
                               "positive": [doc_text(data.corpus[d]) for q in data.positives for d in data.positives[q]]})
    model = SentenceTransformer(resolve_model(MODEL).path)
    enc, srch = Timer(), Timer()
    model.encode_document = enc.wrap(model.encode_document, lambda texts, **k: len(texts))
    model.encode_query = enc.wrap(model.encode_query, lambda texts, **k: 0)

    class TimedFlatIP(faiss.IndexFlatIP):
        def search(self, x, k, *a, **kw):
            return srch.wrap(super().search, lambda x, k, *a, **kw: len(x))(x, k, *a, **kw)

    faiss.IndexFlatIP = TimedFlatIP
    m = cfg.mining
    result = mine_hard_negatives(pairs, model, corpus=corpus, range_max=m.range_max, relative_margin=m.relative_margin,
                                 num_negatives=m.num_negatives, sampling_strategy=m.sampling_strategy,
                                 batch_size=cfg.first_stage.encoder.batch_size, use_faiss=True,
                                 output_format="labeled-list", verbose=False)
    total = time.perf_counter() - start
    docs_column = result.column_names[1]  # labeled-list: query, [positive, negatives...], labels
    mined = {f"{r['query']}\t{r[docs_column][0]}": [d for d, label in zip(r[docs_column], r["labels"]) if label == 0]
             for r in result}
    return {"encode_seconds": enc.seconds, "docs": enc.items, "search_seconds": srch.seconds, "queries": srch.items,
            "total_seconds": total, "negatives": sum(labels.count(0) for labels in result["labels"]),  # per row
            "mined": mined}


def child(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stats = (run_theirs if SIDES[args.side] is None else run_ours)(args, Path(tmp))
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps(stats))


def overlap(mined: dict, reference: dict) -> tuple[float, float]:
    """(mean over reference rows of the share of their negatives ``mined`` has too, the same over all negatives)."""
    shares, shared, total = [], 0, 0
    for key, negatives in reference.items():
        if negatives:
            common = len(set(negatives) & set(mined.get(key, ())))
            shares.append(common / len(negatives))
            shared, total = shared + common, total + len(negatives)
    return statistics.mean(shares), shared / total


def row(name: str, run: int, s: dict) -> str:
    return (f"| {name} | {run} | {s['docs'] / s['encode_seconds']:.1f} | {1000 * s['search_seconds'] / max(s['queries'], 1):.3f} "
            f"| {s['total_seconds']:.1f} | {s['peak_rss_mb']:.0f} | {s['negatives']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating which goes first")
    parser.add_argument("--sides", nargs="+", choices=list(SIDES), default=list(SIDES),
                        help="sentence-transformers is always run: every ratio is to it")
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES if side in args.sides or SIDES[side] is None}
    for repeat in range(args.repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # alternate, so drift hits both sides
        for side in order:
            runs[side].append(run_side(side, args))
    print("| miner | run | encode docs/s | search ms/query | total s | peak RSS MB | negatives (per query-positive row) |")
    print("|---|---|---|---|---|---|---|")
    for side, stats in runs.items():
        for i, s in enumerate(stats, start=1):
            print(row(side, i, s))
    report(runs)


def report(runs: dict[str, list[dict]]) -> None:
    """Each rerankforge side's wall time and peak RSS over sentence-transformers', and its negatives' overlap."""
    theirs = runs["sentence-transformers"]
    references = [side for side in ("rerankforge", "sentence-transformers") if side in runs]
    print()
    for side in (s for s in runs if SIDES[s] is not None):
        ratios = sorted(o["total_seconds"] / t["total_seconds"] for o, t in zip(runs[side], theirs))
        rss = max(s["peak_rss_mb"] for s in runs[side]) / max(s["peak_rss_mb"] for s in theirs)
        goal = "<= 1.0x" if side == "rerankforge" else "<= 0.5x"
        same = "; ".join(f"{100 * m:.1f}% per row, {100 * a:.1f}% of all vs {ref} torch"
                         for ref in references if ref != side
                         for m, a in [overlap(runs[side][0]["mined"], runs[ref][0]["mined"])])
        print(f"{side} / sentence-transformers: wall time {statistics.median(ratios):.2f}x (median of {len(ratios)}: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; goal {goal}), peak RSS {rss:.2f}x; same negatives: {same}")


def run_side(side: str, args) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--data", args.data, "--batch-size", str(args.batch_size)]
    if args.max_queries:
        cmd += ["--max-queries", str(args.max_queries)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):])


if __name__ == "__main__":
    main()

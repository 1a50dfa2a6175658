"""Own-data benchmark: the quickstart with its defaults on corpora shaped like users' own, built from the shared data.

    python bench/own_data.py                                   # every case, one after another, then the table
    python bench/own_data.py --cases covid-articles,covid-articles-off
    python bench/own_data.py --table-only                      # the table of the finished runs under --out

Cases (their data is built under ``--out/data``; nothing is downloaded):

- ``covid-articles``: COVID-QA's passages joined back into its 98 whole articles (~4,800 tokens each), the
  defaults: the length check finds the articles mostly unread and turns chunking on;
- ``covid-articles-off``: the same with ``mine.data.chunking.mode=off``: the reranker reads each article's opening;
- ``scifact-800``: SciFact restricted to 800 documents: every positive of both splits plus a seeded sample;
- ``scifact-splitless``: SciFact with its train labels only: the quickstart holds out a test split of them;
- ``scifact-default`` and ``scifact-chunked``: SciFact as it is, with the defaults (the length check leaves chunking
  off: a third of the abstracts' text is unread) and with ``mine.data.chunking.mode=all``;
- ``scifact-150-cold``: a small corpus with no training labels (cold start): 100 of SciFact's test claims (seeded),
  their 150 documents being every positive of them plus a seeded sample, and only the test labels, which
  eval reads; ``scifact-150-cold-one`` the same, sized as for a large corpus (one question per passage, no cap on
  passes: ``synth.max_queries_per_passage=1 synthetic_max_epochs=null``).

Each case runs ``rerankforge quickstart --data <case data>`` in its own process (under ``/usr/bin/time -v`` for
the peak RSS), output in ``--out/<case>/qs``, its embedding cache in ``--out/<case>/cache`` (cold, as a new user's)
and its log in ``--out/<case>/log.txt``. The table gives, per case, the wall time, the peak RSS, every first stage,
and the reranker alone and fused: nDCG@10 with the paired t-test against the best first stage. Then, for cases
run on the same queries (``PAIRS``: chunking on against off), the paired t-test between their rankings.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import time
from pathlib import Path

from common import data_dir, join_articles

CASES = {"covid-articles": ("covidqa-articles", []),
         "covid-articles-off": ("covidqa-articles", ["mine.data.chunking.mode=off"]),
         "scifact-800": ("scifact-800", []),
         "scifact-splitless": ("scifact-splitless", []),
         "scifact-default": ("scifact", []),
         "scifact-chunked": ("scifact", ["mine.data.chunking.mode=all"]),
         "scifact-150-cold": ("scifact-150", []),
         "scifact-150-cold-one": ("scifact-150", ["synth.max_queries_per_passage=1", "synthetic_max_epochs=null"])}
# the same test queries, one setting apart
PAIRS = [("covid-articles", "covid-articles-off"), ("scifact-chunked", "scifact-default"),
         ("scifact-150-cold", "scifact-150-cold-one")]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", default="runs/bench-own-data")
    parser.add_argument("--table-only", action="store_true", help="print the table of finished runs, run nothing")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="quickstart overrides for every case")
    return parser.parse_args(argv)


def _copy_lines(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")


def scifact_800(source: Path, target: Path, size: int = 800) -> Path:
    """SciFact with ``size`` documents: every positive of the train and test splits, plus a seeded sample."""
    positives = set()
    for split in ("train", "test"):
        rows = (source / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        positives |= {row.split("\t")[1] for row in rows}
        _copy_lines(source / "qrels" / f"{split}.tsv", target / "qrels" / f"{split}.tsv")
    docs = [json.loads(line) for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    others = sorted(d["_id"] for d in docs if d["_id"] not in positives)
    keep = positives | set(random.Random(0).sample(others, size - len(positives)))
    (target / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep),
                                         encoding="utf-8")
    _copy_lines(source / "queries.jsonl", target / "queries.jsonl")
    return target


def scifact_small(source: Path, target: Path, queries: int = 100, size: int = 150) -> Path:
    """``queries`` seeded SciFact test claims over ``size`` documents (their positives plus a seeded sample), with
    the test labels only: a small corpus for cold start."""
    rows = [row.split("\t") for row in (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    kept = set(random.Random(0).sample(sorted({q for q, _, _ in rows}), queries))
    rows = [row for row in rows if row[0] in kept]
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    labels = "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)
    (target / "qrels" / "test.tsv").write_text(labels, encoding="utf-8")
    positives = {d for _, d, _ in rows}
    docs = [json.loads(line) for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    others = sorted(d["_id"] for d in docs if d["_id"] not in positives)
    keep = positives | set(random.Random(0).sample(others, size - len(positives)))
    (target / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep),
                                         encoding="utf-8")
    queries_kept = [line for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
                    if json.loads(line)["_id"] in kept]
    (target / "queries.jsonl").write_text("\n".join(queries_kept) + "\n", encoding="utf-8")
    return target


def scifact_splitless(source: Path, target: Path) -> Path:
    """SciFact's corpus, queries and train labels, without its test split."""
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        _copy_lines(source / name, target / name)
    return target


def build_data(name: str, folder: Path, out: Path) -> Path:
    if name == "scifact":
        return folder / "scifact"
    target = out / "data" / name
    if (target / "corpus.jsonl").exists():
        return target
    if name == "covidqa-articles":
        return join_articles(folder / "covidqa", target)
    build = {"scifact-800": scifact_800, "scifact-splitless": scifact_splitless, "scifact-150": scifact_small}[name]
    return build(folder / "scifact", target)


def run_case(case: str, args: argparse.Namespace) -> None:
    name, extra = CASES[case]
    data, folder = build_data(name, Path(args.data_dir), Path(args.out)), Path(args.out) / case
    folder.mkdir(parents=True, exist_ok=True)
    command = ["rerankforge", "quickstart", "--data", str(data), f"output_dir={folder / 'qs'}",
               f"mine.cache_dir={folder / 'cache'}", *extra, *args.overrides]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    start = time.perf_counter()
    with open(folder / "log.txt", "w", encoding="utf-8") as log:
        code = subprocess.run(timer + command, stdout=log, stderr=subprocess.STDOUT).returncode
    print(f"{case}: exit {code} after {(time.perf_counter() - start) / 60:.1f} min; log {folder / 'log.txt'}",
          flush=True)


def _from_log(log: Path) -> tuple[str, str]:
    """Wall time and peak RSS that ``/usr/bin/time -v`` wrote at the end of a case's log."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return (wall.group(1) if wall else "?"), (f"{int(rss.group(1)) / 1024 ** 2:.2f} GiB" if rss else "?")


def table(cases: list[str], out: Path) -> str:
    rows = ["| case | documents (passages) | test queries | time | peak RSS | best first stage | reranker alone "
            "vs best | fused vs best |", "|---|---|---|---|---|---|---|---|"]
    for case in cases:
        folder = out / case
        report_file = folder / "qs" / "eval" / "report.json"
        if not report_file.exists():
            rows.append(f"| {case} | not finished (see {folder / 'log.txt'}) |||||||")
            continue
        report = json.loads(report_file.read_text())
        best, entry, data = report["best_first_stage"], report["rerankers"]["finetuned"], report["data"]

        def versus(result: dict) -> str:
            t = result["vs_best_first_stage"]["ndcg@10"]
            return (f"{result['metrics']['ndcg@10']:.4f} ({t['delta']:+.4f}, p = {t['p_value']:.3g}, "
                    f"{t['wins']}/{t['losses']})")

        wall, rss = _from_log(folder / "log.txt")
        rows.append(f"| {case} | {data['corpus_documents']:,} ({data['corpus_passages']:,}) | {data['queries']} | "
                    f"{wall} | {rss} | {best} {report['first_stages'][best]['metrics']['ndcg@10']:.4f} | "
                    f"{versus(entry['alone'])} | {versus(entry)} |")
    return "\n".join(rows)


def compare(a: str, b: str, out: Path) -> list[str]:
    """Lines of paired t-tests (nDCG@10 per query) between case ``a`` and case ``b``: each run of ``a``'s eval
    (first stage, reranker alone, fused) against the same run of ``b``'s."""
    from rerankforge.core.metrics import paired_test, per_query
    from rerankforge.eval.report import read_trec
    from rerankforge.retrieval.config import FieldNames
    from rerankforge.retrieval.loaders import load_qrels

    evals = [out / case / "qs" / "eval" for case in (a, b)]
    if not all((e / "report.json").exists() for e in evals):
        return []
    qrels = load_qrels(json.loads((evals[0] / "report.json").read_text())["data"]["sources"]["qrels"], FieldNames(), [])
    lines = []
    for label, run in (("first stage", "first_stage"), ("reranker alone", "finetuned-alone"), ("fused", "finetuned")):
        values = [per_query(qrels, read_trec(e / "runs" / f"{run}.trec"), ["ndcg@10"])["ndcg@10"] for e in evals]
        test = paired_test(values[1], values[0])
        lines.append(f"{a} vs {b}, {label}: nDCG@10 {sum(values[0].values()) / len(values[0]):.4f} vs "
                     f"{sum(values[1].values()) / len(values[1]):.4f}, {test['delta']:+.4f}, p = {test['p_value']:.3g} "
                     f"({test['wins']}/{test['losses']})")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown {unknown}; expected any of {list(CASES)}.")
    if not args.table_only:
        for case in cases:
            run_case(case, args)
    print(table(cases, Path(args.out)))
    for a, b in PAIRS:
        if a in cases and b in cases:
            print("\n".join(compare(a, b, Path(args.out))))


if __name__ == "__main__":
    main()

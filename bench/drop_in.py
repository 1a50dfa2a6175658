"""What a drop-in user gets: the plain checkpoint behind `rerankforge serve`, called through the real cohere SDK.

    python bench/drop_in.py runs/quickstart/eval [runs/covidqa/eval ...] [--max-length 256] [--reranker finetuned]

Each argument is a finished eval folder (a quickstart's `eval/` or a `rerankforge eval` output_dir). For each one:
start `rerankforge serve --model <its checkpoint>` on a free loopback port (a separate process, as a user runs it),
send every test query's candidates (the first stage's top-`depth` that eval reranked, `runs/first_stage.trec`)
through `cohere.ClientV2(base_url=...).rerank` with no extension field, and score the order the client gets back.

Prints one row per folder: nDCG@10 of that order against the best first stage on the same queries (paired
t-test), and eval's own reranker-alone figure (Cohere's v2 route scores a document longer than the length it reads
as its best chunk; eval does the same with `rerankers.<name>.max_passage_tokens`, as the quickstart sets, and cuts it
otherwise). The server runs with its defaults (the
checkpoint's own max_length, what it was trained with: 256 in the recipes) except the port and `--max-length`.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evals", nargs="+", help="finished eval folders (report.json, config.yaml, runs/)")
    parser.add_argument("--reranker", default="finetuned", help="the reranker's name in the eval config")
    parser.add_argument("--max-length", type=int, help="the server's max_length (default: the checkpoint's own)")
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--max-queries", type=int, help="the first N test queries only (a smoke run)")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, max_length: int | None) -> tuple[subprocess.Popen, str]:
    """``rerankforge serve`` in its own process; returns it and its URL once ``/health`` answers."""
    import httpx

    port = free_port()
    length = [f"max_length={max_length}"] if max_length else []
    proc = subprocess.Popen([sys.executable, "-m", "rerankforge", "serve", "--model", model, "--port", str(port),
                             *length])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rerankforge serve --model {model} exited with code {proc.returncode}.")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"rerankforge serve --model {model} did not answer /health within 300 s.")


def eval_inputs(folder: Path, reranker: str) -> dict:
    """The checkpoint, depth, data and runs of a finished eval folder."""
    from rerankforge.core.config import load_config
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.data import load_eval_data
    from rerankforge.eval.report import read_trec

    for name in ("report.json", "config.yaml", "runs/first_stage.trec"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder} has no {name}: pass the output folder of a finished eval.")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    entry = report["rerankers"].get(reranker)
    if not entry or not entry.get("model"):
        raise SystemExit(f"{folder}/report.json has no reranker {reranker!r} with a model; pass --reranker NAME.")
    cfg = load_config(EvalConfig, str(folder / "config.yaml"))
    data = load_eval_data(cfg.data)
    best = report.get("best_first_stage") or report["first_stage"]["method"]
    alone = "alone" if entry.get("fusion") else None
    return {"model": str(Path(entry["model"]).resolve()), "depth": entry["depth"], "data": data, "best": best,
            "candidates": read_trec(folder / "runs" / "first_stage.trec"),
            "best_run": read_trec(folder / "runs" / f"first_stage-{best}.trec"),
            "eval_alone": read_trec(folder / "runs" / (f"{reranker}-alone.trec" if alone else f"{reranker}.trec"))}


def rerank_through_cohere(url: str, inputs: dict, max_queries: int | None = None) -> dict[str, dict[str, float]]:
    """The run a Cohere SDK client gets: each query's top-``depth`` candidates in the order the server returns."""
    import cohere
    from tqdm.auto import tqdm

    from rerankforge.core.text import doc_text

    client = cohere.ClientV2(api_key="unused", base_url=url, timeout=600)
    data, run = inputs["data"], {}
    for query_id in tqdm(sorted(data.qrels)[:max_queries], desc="Cohere SDK requests", unit="query"):
        docs = list(inputs["candidates"].get(query_id, {}))[: inputs["depth"]]
        if not docs:
            continue
        response = client.rerank(model="rerank-v3.5", query=data.queries[query_id],
                                 documents=[doc_text(data.corpus[d]) for d in docs], top_n=len(docs))
        run[query_id] = {docs[r.index]: float(len(docs) - rank) for rank, r in enumerate(response.results)}
    return run


def measure(folder: Path, args: argparse.Namespace) -> dict:
    from rerankforge.core.metrics import paired_test, per_query

    inputs = eval_inputs(folder, args.reranker)
    proc, url = start_server(inputs["model"], args.max_length)
    try:
        started = time.perf_counter()
        run = rerank_through_cohere(url, inputs, args.max_queries)
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    qrels = {q: labels for q, labels in inputs["data"].qrels.items() if args.max_queries is None or q in run}
    got, best, alone = (per_query(qrels, r, [args.metric])[args.metric]
                        for r in (run, inputs["best_run"], inputs["eval_alone"]))
    mean = lambda values: sum(values.values()) / max(len(values), 1)  # noqa: E731
    return {"folder": str(folder), "queries": len(qrels), "best": inputs["best"], "best_value": mean(best),
            "drop_in": mean(got), "eval_alone": mean(alone), "test": paired_test(best, got),
            "ms_per_query": 1000 * seconds / max(len(run), 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [measure(Path(folder), args) for folder in args.evals]
    print(f"\n| eval folder | queries | best first stage ({args.metric}) | drop-in: cohere SDK -> rerankforge serve | "
          "delta | paired p | better / worse | eval's reranker alone | ms / query |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["test"]
        print(f"| {r['folder']} | {r['queries']} | {r['best']} {r['best_value']:.4f} | {r['drop_in']:.4f} | "
              f"{t['delta']:+.4f} | {t['p_value']:.3g} | {t['wins']} / {t['losses']} | {r['eval_alone']:.4f} | "
              f"{r['ms_per_query']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

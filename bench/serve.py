"""Serving under load: N concurrent clients against `rerankforge serve` on loopback, against the offline scorer.

    python bench/serve.py [--model runs/cold/scifact-e2e/train/final] [--clients 8] [--docs 100] [--seconds 60]
                          [--api tei|cohere-v1|infinity] [--modes on,off] [--max-length 128] [--batch-size 32]
                          [--backend openvino [--quantize int8 --calibration runs/mine/scifact]]

Each client sends `--docs` SciFact abstracts per request, back to back for `--seconds` (the clients stop by
themselves; requests in flight at the deadline still finish and count), through an API that truncates each pair
to `--max-length` (TEI `truncate=true`, Cohere v1 `max_chunks_per_doc=1`, or infinity), so that the server scores
exactly the pairs the offline scorer does. The offline scorer is `Reranker.score_pairs` on the same `Reranker`
object the server uses (same backend, same batch size), one request's pairs per call, measured in the same run
after a full-size warm-up call: half of `--offline-seconds` before the server runs and half after, pooled, so
that a drift of the machine's speed during the run weighs on both sides.

Prints, per micro-batching mode: requests, errors, p50/p95 latency, p95 against one offline call of one request,
and the server's pairs/s against the offline pairs/s. The goal: 0 errors and a ratio >= 0.95 (no throughput lost
to HTTP, batching or queueing). On a GPU the goal p95 <= 1.2x one call also applies; on a CPU the work is
compute-bound, so 8 concurrent requests cost about 8 calls whatever the batching.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import threading
import time
from pathlib import Path

from common import ROOT, data_dir

QUERY = "Vitamin D deficiency raises the risk of infection."


def default_model() -> str:
    """The cold-start SciFact checkpoint when it exists, else the first trained one found under runs/."""
    preferred = ROOT / "runs" / "cold" / "scifact-e2e" / "train" / "final"
    found = [preferred] if preferred.is_dir() else sorted(ROOT.glob("runs/*/train/final")) + sorted(
        ROOT.glob("runs/train/*/final"))
    return str(found[0]) if found else str(preferred)


def docs_sample(data: Path, count: int, seed: int = 0) -> list[str]:
    lines = (data / "corpus.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in random.Random(seed).sample(lines, count)]
    return [f"{r.get('title', '')} {r['text']}".strip() for r in rows]


def request_for(api: str, query: str, docs: list[str]) -> tuple[str, dict]:
    """Path and body of one request that scores each (query, doc) pair once, truncated to the model's length."""
    if api == "tei":
        return "/rerank", {"query": query, "texts": docs, "truncate": True}
    if api == "infinity":
        return "/rerank", {"query": query, "documents": docs}
    return "/v1/rerank", {"query": query, "documents": docs, "max_chunks_per_doc": 1}


def start_server(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(url: str, clients: int, seconds: float, path: str, body: dict, long_fraction: float = 0.0) -> dict:
    """Requests per client until the deadline; a seeded ``long_fraction`` of them carry a ~3,000-token query.
    Latencies and ``errors`` count the ordinary requests; ``long`` / ``long_errors`` the long-query ones."""
    import httpx

    latencies, counts, lock = [], {"errors": 0, "long": 0, "long_errors": 0}, threading.Lock()
    deadline, long_body = time.monotonic() + seconds, {**body, "query": " ".join([body["query"]] * 350)}

    def client(seed: int):
        rng = random.Random(seed)
        with httpx.Client(timeout=600) as http:
            while time.monotonic() < deadline:
                is_long = rng.random() < long_fraction
                start = time.perf_counter()
                try:
                    ok = http.post(url + path, json=long_body if is_long else body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if is_long:
                        counts["long"] += 1
                        counts["long_errors"] += not ok
                    elif ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        counts["errors"] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, ordered = time.perf_counter() - start, sorted(latencies)
    return {"requests": len(latencies), "elapsed": elapsed, **counts,
            "p50": statistics.median(ordered) if ordered else float("nan"), "p95": percentile(ordered, 0.95)}


def offline(reranker, pairs: list[tuple[str, str]], seconds: float) -> list[float]:
    """Times of calls of ``score_pairs(pairs)`` (one request's worth) for about ``seconds`` (at least 3 calls)."""
    calls, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(calls) < 3:
        begin = time.perf_counter()
        reranker.score_pairs(pairs, raw=True)
        calls.append(time.perf_counter() - begin)
    return calls


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--data", default=str(data_dir() / "scifact"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--offline-seconds", type=float, default=30,
                        help="how long to measure the offline scorer (half before the server runs, half after)")
    parser.add_argument("--api", default="tei", choices=["tei", "cohere-v1", "infinity"])
    parser.add_argument("--modes", default="on,off", help="micro-batching modes to run: on, off or both")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"])
    parser.add_argument("--backend", default="torch", choices=["torch", "openvino"], help="the server's backend")
    parser.add_argument("--quantize", default=None, choices=["int8"])
    parser.add_argument("--calibration", default=None, help="for openvino int8: a mined training set or pairs file")
    parser.add_argument("--long-query-fraction", type=float, default=0.0,
                        help="share of requests whose query is ~3,000 tokens (they must not fail, nor fail others)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    from rerankforge.models.reranker import Reranker
    from rerankforge.serve import ServeConfig, create_app

    docs = docs_sample(Path(args.data), args.docs)
    reranker = Reranker(args.model, max_length=args.max_length, device="cpu", batch_size=args.batch_size,
                        dtype=args.dtype, backend=args.backend, quantize=args.quantize, calibration=args.calibration)
    pairs = [(QUERY, d) for d in docs]
    reranker.score_pairs(pairs, raw=True)  # warm-up at full size: the first call of each shape is slower
    before = offline(reranker, pairs, args.offline_seconds / 2)
    path, body = request_for(args.api, QUERY, docs)
    results = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        app = create_app(ServeConfig(model=args.model, max_length=args.max_length, batch_size=args.batch_size,
                                     micro_batching=mode == "on", max_documents=max(1000, args.docs)),
                         reranker=reranker)
        server, thread, url = start_server(app)
        results[mode] = load(url, args.clients, args.seconds, path, body, args.long_query_fraction)
        server.should_exit = True
        thread.join(timeout=30)
    after = offline(reranker, pairs, args.offline_seconds / 2)
    report(args, torch.__version__, torch.get_num_threads(), before, after, results)


def report(args, torch_version: str, threads: int, before: list[float], after: list[float], results: dict) -> None:
    """The table: the offline scorer measured before and after the server runs, pooled, against each mode."""
    calls = before + after
    offline_pps, single_s = args.docs * len(calls) / sum(calls), min(calls)
    print(f"{args.clients} clients x {args.docs}-document requests ({args.api}, truncated to max_length "
          f"{args.max_length}) for {args.seconds:.0f} s per mode; backend {args.backend} "
          f"{args.quantize or args.dtype}, batch size {args.batch_size}, torch {torch_version}, {threads} threads; "
          f"model {args.model}")
    print(f"offline Reranker.score_pairs, one request ({args.docs} pairs) per call: {offline_pps:.1f} pairs/s "
          f"({len(calls)} calls: {args.docs * len(before) / sum(before):.1f} before the server runs, "
          f"{args.docs * len(after) / sum(after):.1f} after), best call {single_s * 1000:,.0f} ms")
    print("| micro-batching | requests | errors | p50 ms | p95 ms | p95 / one offline call | server pairs/s "
          "| offline pairs/s | server / offline | long-query requests (errors) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, result in results.items():
        server_pps = result["requests"] * args.docs / result["elapsed"]
        print(f"| {mode} | {result['requests']} | {result['errors']} | {result['p50'] * 1000:,.0f} "
              f"| {result['p95'] * 1000:,.0f} | {result['p95'] / single_s:.2f}x | {server_pps:.1f} "
              f"| {offline_pps:.1f} | {server_pps / offline_pps:.3f} | {result['long']} ({result['long_errors']}) |")


if __name__ == "__main__":
    main()

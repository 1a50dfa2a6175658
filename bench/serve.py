"""Serving under load: N concurrent clients against `rerankforge serve` on loopback, micro-batching on and off.

    python bench/serve.py [--model runs/train/scifact-a/final] [--clients 8] [--docs 100] [--seconds 40]
                          [--max-length 128] [--backend openvino [--quantize int8 --calibration runs/mine/scifact]]

Each client sends Cohere /v2/rerank requests of `--docs` SciFact abstracts back to back for `--seconds` (the
clients stop by themselves; requests in flight at the deadline still finish and count). Prints requests/s,
p50/p95 latency and errors per mode, and the p95 against one in-process CrossEncoder.predict call of the same
size (the project's goal: p95 <= 1.2x that call under 8 clients, with 0 errors).
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

ROOT = Path(__file__).resolve().parents[1]


def docs_sample(data: Path, count: int, seed: int = 0) -> list[str]:
    lines = (data / "corpus.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in random.Random(seed).sample(lines, count)]
    return [f"{r.get('title', '')} {r['text']}".strip() for r in rows]


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


def load(url: str, clients: int, seconds: float, query: str, docs: list[str], long_fraction: float = 0.0) -> dict:
    """Requests per client until the deadline; a seeded ``long_fraction`` of them carry a ~3,000-token query.
    Latencies and ``errors`` count the ordinary requests; ``long`` / ``long_errors`` the long-query ones."""
    import httpx

    latencies, errors, lock = [], {"ordinary": 0, "long": 0, "long_ok": 0}, threading.Lock()
    deadline, long_query = time.monotonic() + seconds, " ".join([query] * 350)

    def client(seed: int):
        rng = random.Random(seed)
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < deadline:
                is_long = rng.random() < long_fraction
                start = time.perf_counter()
                try:
                    body = {"query": long_query if is_long else query, "documents": docs}
                    ok = http.post(f"{url}/v2/rerank", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if is_long:
                        errors["long_ok" if ok else "long"] += 1
                    elif ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors["ordinary"] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "errors": errors["ordinary"],
            "long": errors["long"] + errors["long_ok"], "long_errors": errors["long"],
            "p50": statistics.median(ordered) if ordered else float("nan"), "p95": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "train" / "scifact-a" / "final"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "scifact"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--backend", default="torch", choices=["torch", "openvino"], help="the server's backend")
    parser.add_argument("--quantize", default=None, choices=["int8"])
    parser.add_argument("--calibration", default=None, help="for openvino int8: a mined training set or pairs file")
    parser.add_argument("--long-query-fraction", type=float, default=0.0,
                        help="share of requests whose query is ~3,000 tokens (they must not fail, nor fail others)")
    args = parser.parse_args()
    from sentence_transformers.cross_encoder import CrossEncoder

    from rerankforge.eval.serve import ServeConfig, create_app
    from rerankforge.models.reranker import Reranker

    docs, query = docs_sample(Path(args.data), args.docs), "Vitamin D deficiency raises the risk of infection."
    peer = CrossEncoder(args.model, max_length=args.max_length, device="cpu")
    peer.predict([(query, d) for d in docs[:8]], show_progress_bar=False)  # warm-up
    single = []
    for _ in range(3):
        start = time.perf_counter()
        peer.predict([(query, d) for d in docs], batch_size=32, show_progress_bar=False)
        single.append(time.perf_counter() - start)
    single_s = min(single)
    reranker = Reranker(args.model, max_length=args.max_length, device="cpu", backend=args.backend,
                        quantize=args.quantize, calibration=args.calibration)
    print(f"{args.clients} clients x {args.docs}-document requests for {args.seconds:.0f} s per mode, max_length "
          f"{args.max_length}, server backend {args.backend} {args.quantize or 'float32'}; one CrossEncoder.predict "
          f"call of {args.docs} pairs: {single_s * 1000:.0f} ms (best of 3)")
    print("| micro-batching | requests | req/s | p50 ms | p95 ms | p95 / single predict | errors | long-query "
          "requests (errors) |")
    print("|---|---|---|---|---|---|---|---|")
    for batching in (True, False):
        app = create_app(ServeConfig(model=args.model, max_length=args.max_length, micro_batching=batching,
                                     max_documents=max(1000, args.docs)), reranker=reranker)
        server, thread, url = start_server(app)
        result = load(url, args.clients, args.seconds, query, docs, args.long_query_fraction)
        server.should_exit = True
        thread.join(timeout=30)
        print(f"| {'on' if batching else 'off'} | {result['requests']} | {result['rps']:.2f} | {result['p50'] * 1000:.0f} "
              f"| {result['p95'] * 1000:.0f} | {result['p95'] / single_s:.2f}x | {result['errors']} | {result['long']} "
              f"({result['long_errors']}) |")


if __name__ == "__main__":
    main()

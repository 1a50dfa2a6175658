"""GET /metrics: Prometheus text format, parsed with prometheus_client's own parser; each app counts its own."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from conftest import DOCS, QUERY

parser = pytest.importorskip("prometheus_client.parser")


def scrape(url: str) -> dict[tuple, float]:
    """``{(sample name, sorted labels): value}`` of the server's /metrics."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_count_requests_by_route_and_status_with_latency_and_batch_sizes(reranker, serve_tiny):
    live = serve_tiny(reranker, micro_batching=False, max_documents=5, max_body_bytes=4000)
    for _ in range(2):
        assert httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": DOCS}).status_code == 200
    assert httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": ["d"] * 6}).status_code == 413
    assert httpx.post(f"{live.url}/v2/rerank", json={"query": QUERY, "documents": ["z" * 5000]}).status_code == 413
    assert httpx.post(f"{live.url}/rerank", json={"query": QUERY, "texts": DOCS[:2]}).status_code == 200
    assert httpx.get(f"{live.url}/no/such/path").status_code == 404
    got = scrape(live.url)
    assert got[("rerankforge_requests_total", (("route", "/v2/rerank"), ("status", "200")))] == 2
    assert got[("rerankforge_requests_total", (("route", "/v2/rerank"), ("status", "413")))] == 2
    assert got[("rerankforge_requests_total", (("route", "/rerank"), ("status", "200")))] == 1
    assert got[("rerankforge_requests_total", (("route", "unmatched"), ("status", "404")))] == 1
    assert got[("rerankforge_request_duration_seconds_count", (("route", "/v2/rerank"),))] == 4
    assert got[("rerankforge_request_duration_seconds_sum", (("route", "/v2/rerank"),))] > 0
    # micro-batching off: one scoring call per request, 3 + 3 + 2 pairs
    assert got[("rerankforge_batch_pairs_count", (("model", "tiny"),))] == 3
    assert got[("rerankforge_batch_pairs_sum", (("model", "tiny"),))] == 8
    assert got[("rerankforge_batch_pairs_bucket", (("le", "2.0"), ("model", "tiny")))] == 1
    assert got[("rerankforge_queue_depth", (("model", "tiny"),))] == 0


def test_each_app_counts_only_its_own_requests(reranker, serve_tiny):
    first, second = serve_tiny(reranker), serve_tiny(reranker)
    httpx.post(f"{first.url}/v2/rerank", json={"query": QUERY, "documents": DOCS})
    assert scrape(first.url)[("rerankforge_requests_total", (("route", "/v2/rerank"), ("status", "200")))] == 1
    assert ("rerankforge_requests_total", (("route", "/v2/rerank"), ("status", "200"))) not in scrape(second.url)


def test_queue_depth_counts_the_requests_waiting_for_the_model(reranker, serve_tiny, monkeypatch):
    release, original = threading.Event(), reranker.score_pairs

    def held(pairs, raw=False, limits=None):
        release.wait(30)
        return original(pairs, raw=raw, limits=limits)

    monkeypatch.setattr(reranker, "score_pairs", held)
    live = serve_tiny(reranker)
    depth = ("rerankforge_queue_depth", (("model", "tiny"),))
    senders = [threading.Thread(target=httpx.post, args=(f"{live.url}/v2/rerank",),
                                kwargs={"json": {"query": QUERY, "documents": DOCS}, "timeout": 60}) for _ in range(3)]
    for sender in senders:
        sender.start()
    deadline, seen = time.monotonic() + 20, 0
    while seen < 3 and time.monotonic() < deadline:
        seen = scrape(live.url)[depth]
        time.sleep(0.05)
    release.set()
    for sender in senders:
        sender.join(60)
    assert seen == 3 and scrape(live.url)[depth] == 0

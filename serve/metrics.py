"""Prometheus metrics of one app (``GET /metrics``), in a registry of its own so that several apps in one process
(tests, the bench) keep separate counts.

- ``rerankforge_requests_total{route, status}``: requests answered, by route template (``unmatched`` for paths
  no route serves) and HTTP status.
- ``rerankforge_request_duration_seconds{route}``: latency, from the request's arrival to its answer.
- ``rerankforge_batch_pairs{model}``: pairs per scoring call, i.e. per micro-batch (the reranker splits a call
  into forward batches of ``batch_size``).
- ``rerankforge_queue_depth{model}``: requests in the micro-batcher: waiting for a scoring call or in one.
"""

from __future__ import annotations

from typing import Callable, Optional

from rerankforge.core.extras import require

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PAIR_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
UNMATCHED = "unmatched"  # the route label of paths no route serves: one series, whatever clients probe


class ServerMetrics:
    """The app's collectors and their text exposition."""

    def __init__(self) -> None:
        prom = self.prom = require("prometheus_client", "rerankforge serve's /metrics")
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter("rerankforge_requests", "HTTP requests answered, by route and status.",
                                ["route", "status"], registry=self.registry)
        self.latency = prom.Histogram("rerankforge_request_duration_seconds", "Time from a request's arrival to its "
                                 "answer, by route.", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_pairs = prom.Histogram("rerankforge_batch_pairs", "Pairs per scoring call (one micro-batch).",
                                     ["model"], buckets=PAIR_BUCKETS, registry=self.registry)
        self.queue_depth = prom.Gauge("rerankforge_queue_depth", "Requests in the micro-batcher: waiting for a scoring "
                                 "call or in one.", ["model"], registry=self.registry)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def batch_observer(self, model: str) -> Callable[[int], None]:
        """The callback a ``MicroBatcher`` calls with the size of each scoring call of ``model``."""
        return self.batch_pairs.labels(model=model).observe

    def track_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Read ``model``'s queue depth from ``depth()`` at each scrape."""
        self.queue_depth.labels(model=model).set_function(depth)

    def render(self, accept: Optional[str] = None) -> tuple[bytes, str]:
        """The exposition and its content type, in the format the scraper's ``Accept`` header asks for: the
        Prometheus text format (0.0.4) by default, OpenMetrics when asked."""
        # optional extra [serve]
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

"""Servers for the HTTP tests: uvicorn on a free loopback port, in a thread, around the tiny cross-encoder."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from rerankforge.models.reranker import Reranker  # noqa: E402
from rerankforge.serve import ServeConfig, create_app  # noqa: E402


class LiveServer:
    """uvicorn in a thread on a free 127.0.0.1 port; ``stop()`` ends it."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def launch():
    """``launch(app)`` -> a running ``LiveServer``; every one is stopped after the test."""
    started = []

    def run(app) -> LiveServer:
        started.append(LiveServer(app))
        return started[-1]

    yield run
    for live in started:
        live.stop()


def tiny_app(reranker, **settings):
    """The app serving ``reranker`` as model "tiny" (max_length 48 unless ``settings`` say otherwise)."""
    settings.setdefault("max_length", 48)
    return create_app(ServeConfig(model="tiny", **settings), reranker=reranker)


@pytest.fixture
def serve_tiny(launch):
    """``serve_tiny(reranker, **ServeConfig settings)`` -> a running server of ``reranker`` as model "tiny"."""
    return lambda reranker, **settings: launch(tiny_app(reranker, **settings))


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder):
    return Reranker(tiny_cross_encoder, device="cpu", max_length=48)


@pytest.fixture(scope="module")
def server(reranker):
    """Small limits: 5 documents of at most 200 characters, 4,000-byte bodies."""
    live = LiveServer(tiny_app(reranker, max_documents=5, max_document_chars=200, max_body_bytes=4000))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def wide_reranker(tiny_cross_encoder):
    """The tiny model at its full 128 positions: room for windows of 60+ passage tokens after a long query."""
    return Reranker(tiny_cross_encoder, device="cpu", max_length=128)


@pytest.fixture(scope="module")
def default_server(wide_reranker):
    """Every limit at its default (a 100 KB document must pass)."""
    live = LiveServer(create_app(ServeConfig(model="tiny", max_length=128), reranker=wide_reranker))
    yield live
    live.stop()

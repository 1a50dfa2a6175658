"""``rerankforge serve --model runs/x/final [--pipeline configs/eval/covidqa.yaml] [key=value ...]``

Serves a reranker over HTTP with FastAPI + uvicorn, in the API shapes clients already speak:
Cohere rerank (``POST /v1/rerank``, ``POST /v2/rerank``), Hugging Face TEI (``POST /rerank``), and, with a pipeline
config, retrieve → rerank → generate (``POST /v1/query``). ``GET /health``; the OpenAPI schema is at
``/openapi.json``. Requests that arrive together share forward passes (see ``MicroBatcher``); a request that
fails fails alone, and any unexpected error is a JSON 500 (logged with its traceback), never a dropped connection.

Long inputs (``models/pairs.py``): the query always keeps its first ``max_query_length`` tokens (the reranker's,
default 64). Cohere: a long document is split into overlapping chunks of what ``max_length`` leaves after the query
and scores as its best chunk (max pooling, as Cohere does); v2 first cuts it to ``max_tokens_per_doc`` tokens
(default 4096), v1 keeps at most ``max_chunks_per_doc`` chunks (default 10). TEI: ``truncate=false`` (default)
answers 413 for a (query, text) pair over ``max_length`` tokens; ``truncate=true`` keeps the text's start
(``truncation_direction="Right"``) or end ("Left").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence

from rerankforge.eval.serve_schema import (COHERE_MAX_CHUNKS_PER_DOC, COHERE_MAX_TOKENS_PER_DOC, CohereRerankRequest,
                                           QueryRequest, TEIRerankRequest, cohere_response, tei_response)
from rerankforge.models.pairs import PairLimits
from rerankforge.utils.extras import require

logger = logging.getLogger("rerankforge.serve")


@dataclass
class ServeConfig:
    """Server settings; limits answer with 413 naming the limit that was passed."""

    model: Optional[str] = None  # a rerankforge final/, a Hub cross-encoder id, or a LoRA adapter folder
    pipeline: Optional[str] = None  # an eval config (configs/eval/*.yaml): enables POST /v1/query
    host: str = "127.0.0.1"  # loopback by default: expose deliberately
    port: int = 8000
    max_length: int = 512
    batch_size: int = 32
    device: Optional[str] = None
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"  # auto: bfloat16 on CUDA and CPUs with AMX
    backend: Literal["torch", "openvino"] = "torch"  # openvino: CPU, pip install 'rerankforge[openvino]'
    quantize: Optional[Literal["int8"]] = None  # CPU; with openvino it needs `calibration`
    calibration: Optional[str] = None  # (query, passage) records or a mined training set (runs/mine/x)
    max_documents: int = 1000  # per request
    max_document_chars: int = 1_000_000  # per document; long ones are chunked or truncated, never an error
    max_body_bytes: int = 5_000_000
    micro_batching: bool = True
    batch_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_batch_pairs: int = 512
    token_env: Optional[str] = None  # name of an env var holding a bearer token; unset: no auth


class MicroBatcher:
    """Dynamic micro-batching: concurrent requests are scored in shared calls of ``score_pairs(pairs, limits)``.

    The first waiting request opens a window of ``wait_ms``; everything queued by its end (up to ``max_pairs``
    pairs) is scored on a single worker thread, so forward passes never overlap: one call per group of requests
    with equal ``limits`` (a ``PairLimits``, or None for the model's default). When a shared call raises, each
    request of its group is retried alone, so only a request that fails by itself gets the exception and the
    others get their scores. The worker outlives any error. With ``enabled=False`` each request is scored alone
    (still one at a time). ``calls`` counts the calls of ``score_pairs`` (retries included).
    """

    def __init__(self, score_pairs: Callable[[list[tuple[str, str]], Optional[PairLimits]], list[float]],
                 wait_ms: float = 5.0, max_pairs: int = 512, enabled: bool = True):
        self.score_pairs, self.wait, self.max_pairs, self.enabled = score_pairs, wait_ms / 1000, max_pairs, enabled
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankforge-model")
        self.queue: Optional[asyncio.Queue] = None
        self.worker: Optional[asyncio.Task] = None
        self.calls = 0  # forward calls made: how many requests shared them shows in tests and the bench

    async def score(self, pairs: list[tuple[str, str]], limits: Optional[PairLimits] = None) -> list[float]:
        """The raw scores of ``pairs`` under ``limits``, in order.

        Raises:
            Exception: whatever ``score_pairs`` raised for these pairs scored alone.
        """
        if not pairs:
            return []
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await self._call(pairs, limits)
        if self.queue is None:
            self.queue = asyncio.Queue()
        if self.worker is None or self.worker.done():  # started lazily, on the server's loop
            self.worker = loop.create_task(self._run())
        future = loop.create_future()
        await self.queue.put((pairs, limits, future))
        return await future

    async def _call(self, pairs: list[tuple[str, str]], limits: Optional[PairLimits]) -> list[float]:
        self.calls += 1
        scores = await asyncio.get_running_loop().run_in_executor(self.executor, self.score_pairs, pairs, limits)
        if len(scores) != len(pairs):
            raise RuntimeError(f"score_pairs returned {len(scores)} scores for {len(pairs)} pairs.")
        return list(scores)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            try:
                size, deadline = len(batch[0][0]), loop.time() + self.wait
                while size < self.max_pairs:
                    try:
                        item = await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0))
                    except asyncio.TimeoutError:
                        break
                    batch.append(item)
                    size += len(item[0])
                groups: dict[Optional[PairLimits], list] = {}
                for item in batch:
                    groups.setdefault(item[1], []).append(item)
                for limits, items in groups.items():
                    await self._score_group(items, limits)
            except Exception as exc:  # a bug here must not strand the waiting requests nor stop the worker
                logger.exception("micro-batcher: unexpected error")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    async def _score_group(self, items: list, limits: Optional[PairLimits]) -> None:
        items = [item for item in items if not item[2].done()]  # a cancelled request needs no scores
        if not items:
            return
        try:
            scores = await self._call([pair for pairs, _, _ in items for pair in pairs], limits)
        except Exception as exc:
            if len(items) == 1:
                if not items[0][2].done():
                    items[0][2].set_exception(exc)
                return
            logger.warning("micro-batcher: a call shared by %d requests failed (%s: %s); retrying each alone",
                           len(items), type(exc).__name__, exc)
            for item in items:
                await self._score_group([item], limits)
            return
        start = 0
        for pairs, _, future in items:
            if not future.done():
                future.set_result(scores[start:start + len(pairs)])
            start += len(pairs)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


def cohere_limits(default: PairLimits, body: CohereRerankRequest, version: int) -> PairLimits:
    """How a Cohere request fits long inputs: the query cut to ``default.max_query_length`` tokens and long
    documents chunked into overlapping windows scored by their best one (max pooling, as Cohere does).

    v2: documents are first cut to ``max_tokens_per_doc`` tokens (default 4096), then chunked. v1: at most
    ``max_chunks_per_doc`` chunks (default 10), the first ones; one chunk is plain truncation.
    """
    if version == 1:
        tokens, windows = body.max_tokens_per_doc, body.max_chunks_per_doc or COHERE_MAX_CHUNKS_PER_DOC
    else:
        tokens, windows = body.max_tokens_per_doc or COHERE_MAX_TOKENS_PER_DOC, body.max_chunks_per_doc
    return PairLimits(max_length=default.max_length, max_query_length=default.max_query_length,
                      max_passage_tokens=tokens, max_windows=windows)


def pair_lengths(tokenizer, query: str, texts: Sequence[str]) -> list[int]:
    """Tokens of each (query, text) pair with the special tokens, untruncated (never raises on length)."""
    enc = tokenizer([query] * len(texts), list(texts), truncation=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return [len(ids) for ids in enc["input_ids"]]


class ServeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def check_documents(cfg: ServeConfig, query: str, texts: Sequence[str], top_n: Optional[int]) -> None:
    """The request checks shared by every rerank endpoint.

    Raises:
        ServeError: 422 for an empty query, no documents or a bad ``top_n``; 413 past a configured limit.
    """
    if not query.strip():
        raise ServeError(422, "query is empty: send the text to rank the documents against.")
    if not texts:
        raise ServeError(422, "documents is empty: send at least one document.")
    if len(texts) > cfg.max_documents:
        raise ServeError(413, f"{len(texts)} documents sent; this server takes at most max_documents="
                              f"{cfg.max_documents} per request. Split the request.")
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    if len(texts[longest]) > cfg.max_document_chars:
        raise ServeError(413, f"document {longest} has {len(texts[longest])} characters; the limit is "
                              f"max_document_chars={cfg.max_document_chars}.")
    if top_n is not None and not 1 <= top_n <= len(texts):
        raise ServeError(422, f"top_n={top_n} is out of range: expected 1 <= top_n <= {len(texts)} (the number "
                              "of documents), or leave it out.")


def create_app(cfg: ServeConfig, reranker=None, pipeline=None):
    """The FastAPI app. ``reranker`` (a ``Reranker``) and ``pipeline`` are loaded from ``cfg`` when not given.

    Raises:
        ImportError: FastAPI is missing (with the pip command).
    """
    require("fastapi", "rerankforge serve")
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from rerankforge.models.reranker import Reranker

    if reranker is None:
        if not cfg.model:
            raise ValueError("No model to serve: pass --model PATH (a rerankforge final/ folder or Hub id).")
        reranker = Reranker(cfg.model, max_length=cfg.max_length, device=cfg.device, batch_size=cfg.batch_size,
                            dtype=cfg.dtype, backend=cfg.backend, quantize=cfg.quantize, calibration=cfg.calibration)
    batcher = MicroBatcher(lambda pairs, limits: reranker.score_pairs(pairs, raw=True, limits=limits),
                           cfg.batch_wait_ms, cfg.max_batch_pairs, cfg.micro_batching)
    token = os.environ.get(cfg.token_env) if cfg.token_env else None
    if cfg.token_env and not token:
        raise ValueError(f"token_env={cfg.token_env} but that environment variable is empty; set it or drop token_env.")
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title="rerankforge", version="1", description="Cohere- and TEI-compatible reranking.",
                  lifespan=lifespan)
    app.state.batcher, app.state.reranker = batcher, reranker
    bearer = HTTPBearer(auto_error=False)

    def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if token is not None and (credentials is None or credentials.credentials != token):
            raise ServeError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'.")

    async def internal_error(request: Request, exc: Exception):
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"message": f"internal server error ({type(exc).__name__}); the server logged the "
                                        "traceback."}, status_code=500)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_body_bytes:
            return JSONResponse({"message": f"request body has {length} bytes; the limit is max_body_bytes="
                                            f"{cfg.max_body_bytes}."}, status_code=413)
        try:
            return await call_next(request)
        except Exception as exc:  # answered here, it never reaches uvicorn (which would drop the connection)
            return await internal_error(request, exc)

    app.add_exception_handler(Exception, internal_error)  # errors outside the middleware above

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"message": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"message": "; ".join(parts)}, status_code=422)

    async def scores(query: str, texts: list[str], limits: PairLimits) -> list[float]:
        return await batcher.score([(query, t) for t in texts], limits)

    async def cohere(body: CohereRerankRequest, version: int) -> dict:
        texts = body.texts()
        check_documents(cfg, body.query, texts, body.top_n)
        logits = await scores(body.query, texts, cohere_limits(reranker.limits, body, version))
        return cohere_response(str(uuid.uuid4()), texts, logits, body.top_n,
                               body.return_documents if version == 1 else False, version)

    @app.post("/v1/rerank", dependencies=[Depends(authorize)])
    async def rerank_v1(body: CohereRerankRequest):
        return await cohere(body, 1)

    @app.post("/v2/rerank", dependencies=[Depends(authorize)])
    async def rerank_v2(body: CohereRerankRequest):
        return await cohere(body, 2)

    @app.post("/rerank", dependencies=[Depends(authorize)])
    async def rerank_tei(body: TEIRerankRequest):
        check_documents(cfg, body.query, body.texts, None)
        if not body.truncate:  # counted on the model thread: the tokenizer is not shared across threads
            lengths = await asyncio.get_running_loop().run_in_executor(
                batcher.executor, pair_lengths, reranker.tokenizer, body.query, body.texts)
            too_long = [i for i, n in enumerate(lengths) if n > reranker.max_length]
            if too_long:
                i = too_long[0]
                raise ServeError(413, f"text {i} has {lengths[i]} tokens with the query and special tokens, longer "
                                      f"than the model's max_length={reranker.max_length} tokens; send truncate=true "
                                      "(or a shorter query/text).")
        limits = dataclasses.replace(reranker.limits, direction=body.truncation_direction.lower())
        logits = await scores(body.query, body.texts, limits)
        return tei_response(body.texts, logits, body.raw_scores, body.return_text)

    @app.post("/v1/query", dependencies=[Depends(authorize)])
    async def query(body: QueryRequest):
        if pipeline is None:
            raise ServeError(404, "no pipeline configured: start the server with --pipeline configs/eval/<name>.yaml.")
        if not body.query.strip():
            raise ServeError(422, "query is empty.")
        if body.reranker is not None and body.reranker not in pipeline.rerankers:
            raise ServeError(422, f"reranker '{body.reranker}' is not configured; choose one of "
                                  f"{', '.join(pipeline.rerankers)}.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(batcher.executor, pipeline.query, body.query, body.reranker, body.top_n)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": cfg.model, "pipeline": cfg.pipeline is not None,
                "micro_batching": cfg.micro_batching}

    return app


def load_pipeline(path: str):
    from rerankforge.eval.config import EvalConfig
    from rerankforge.eval.pipeline import Pipeline
    from rerankforge.utils.config import load_config

    return Pipeline.from_config(load_config(EvalConfig, path))


def serve(cfg: ServeConfig) -> None:
    """Load the model (and pipeline), then run uvicorn until interrupted."""
    uvicorn = require("uvicorn", "rerankforge serve")
    app = create_app(cfg, pipeline=load_pipeline(cfg.pipeline) if cfg.pipeline else None)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")

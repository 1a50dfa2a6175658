"""The FastAPI app: ``create_app(cfg)`` builds it, ``serve(cfg)`` runs it with uvicorn.

Middleware here answers bodies over ``max_body_bytes``, turns any unexpected error into a JSON answer (logged
with its traceback) instead of a dropped connection, and records every request in the app's metrics.
"""

import asyncio
import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from rerankforge.core.config import ConfigError, load_config
from rerankforge.core.extras import require
from rerankforge.eval.config import EvalConfig
from rerankforge.eval.pipeline import Pipeline
from rerankforge.serve.batcher import MicroBatcher
from rerankforge.serve.config import ServeConfig
from rerankforge.serve.errors import ServeError, error_body, shape_of, unexpected, validation_message
from rerankforge.serve.info import info
from rerankforge.serve.metrics import UNMATCHED, ServerMetrics
from rerankforge.serve.registry import Registry, Served
from rerankforge.serve.routes import add_rerank_routes
from rerankforge.serve.schema import QueryRequest

logger = logging.getLogger("rerankforge.serve")


def load_reranker(cfg: ServeConfig, source: str):
    # rerankforge.models.reranker imports torch, which this module does not otherwise load
    from rerankforge.models.reranker import Reranker

    return Reranker(source, max_length=cfg.max_length, device=cfg.device, batch_size=cfg.batch_size,
                    dtype=cfg.dtype, backend=cfg.backend, quantize=cfg.quantize, calibration=cfg.calibration)


def build_registry(cfg: ServeConfig, given: dict, executor: ThreadPoolExecutor, metrics: ServerMetrics) -> Registry:
    """One ``Served`` per name of ``cfg`` and of ``given`` (name -> ``Reranker``, used instead of loading), the
    default first; all batchers share ``executor`` so that forward passes never overlap."""
    sources = cfg.reranker_sources(required=not given)
    extra = {name: name for name in given if name not in sources}
    sources = {**sources, **extra} if cfg.model else {**extra, **sources}
    served = []
    for name, source in sources.items():
        reranker = given[name] if name in given else load_reranker(cfg, source)
        score = (lambda r: lambda pairs, limits: r.score_pairs(pairs, raw=True, limits=limits))(reranker)
        batcher = MicroBatcher(score, cfg.batch_wait_ms, cfg.max_batch_pairs, cfg.micro_batching, executor=executor,
                               observe=metrics.batch_observer(name))
        metrics.track_queue(name, (lambda b: lambda: b.pending)(batcher))
        served.append(Served(name, source, reranker, batcher))
    return Registry(served)


def create_app(cfg: ServeConfig, reranker=None, pipeline=None, rerankers: Optional[dict] = None):
    """The FastAPI app serving the rerankers of ``cfg`` (and ``pipeline``, a ``Pipeline``, on ``/v1/query``).

    ``reranker``: an in-memory ``Reranker`` to serve as ``cfg.model`` (under its name; the default); ``rerankers``:
    name -> ``Reranker`` for names of ``cfg.models`` or new ones. Whatever is not given is loaded from ``cfg``.

    Raises:
        ImportError: FastAPI or prometheus_client is missing (with the pip command).
        ValueError: nothing to serve, or ``token_env`` naming an empty variable.
    """
    require("fastapi", "rerankforge serve")
    # optional extra [serve]
    from fastapi import FastAPI

    given = dict(rerankers or {})
    if reranker is not None:
        given[cfg.model_name or cfg.model or "default"] = reranker
    token = os.environ.get(cfg.token_env) if cfg.token_env else None
    if cfg.token_env and not token:
        raise ValueError(f"token_env={cfg.token_env} but that environment variable is empty; set it or drop token_env.")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankforge-model")
    metrics = ServerMetrics()
    registry = build_registry(cfg, given, executor, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for served in registry:
            served.batcher.close()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="rerankforge", version="1", lifespan=lifespan,
                  description="Cohere-, TEI- and infinity-compatible reranking.")
    app.state.registry, app.state.metrics, app.state.executor = registry, metrics, executor
    app.state.batcher, app.state.reranker = registry.default.batcher, registry.default.reranker
    authorize = bearer_guard(token)
    install_middleware(app, cfg, metrics)
    install_error_handlers(app)
    add_rerank_routes(app, cfg, registry, authorize)
    add_service_routes(app, cfg, registry, pipeline, executor, authorize)
    return app


def bearer_guard(token: Optional[str]):
    """A FastAPI dependency: 401 unless the request carries ``Authorization: Bearer <token>`` (no-op without a
    token)."""
    # optional extra [serve]
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False)

    def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if token is not None and (credentials is None or credentials.credentials != token):
            raise ServeError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'.")

    return authorize


def internal_error(request, exc: BaseException):
    # optional extra [serve]
    from fastapi.responses import JSONResponse

    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    status, body = unexpected(shape_of(request.url.path, request.state), exc)
    return JSONResponse(body, status_code=status)


def install_middleware(app, cfg: ServeConfig, metrics: ServerMetrics) -> None:
    # optional extra [serve]
    from fastapi import Request
    from fastapi.responses import JSONResponse

    def route_label(request: Request) -> str:
        route = request.scope.get("route")
        if route is not None:
            return route.path
        paths = {getattr(r, "path", None) for r in app.routes}  # requests answered before routing, e.g. the 413
        return request.url.path if request.url.path in paths else UNMATCHED

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start, length = time.perf_counter(), request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_body_bytes:
            message = f"request body has {length} bytes; the limit is max_body_bytes={cfg.max_body_bytes}."
            body = error_body(shape_of(request.url.path, request.state), 413, message)
            response = JSONResponse(body, status_code=413)
        else:
            try:
                response = await call_next(request)
            except Exception as exc:  # answered here, it never reaches uvicorn (which would drop the connection)
                response = internal_error(request, exc)
        metrics.observe_request(route_label(request), response.status_code, time.perf_counter() - start)
        return response


def install_error_handlers(app) -> None:
    # optional extra [serve]
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    app.add_exception_handler(Exception, internal_error)  # errors outside the middleware above

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = error_body(shape_of(request.url.path, request.state), exc.status, exc.message, exc.tei_type)
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        shape, message = validation_message(exc.errors())
        if shape is not None:
            request.state.shape = shape
        return JSONResponse(error_body(shape_of(request.url.path, request.state), 422, message), status_code=422)


def add_service_routes(app, cfg: ServeConfig, registry: Registry, pipeline, executor, authorize) -> None:
    """``/v1/query`` (the pipeline), ``/info``, ``/health`` and ``/metrics``."""

    # optional extra [serve]
    from fastapi import Depends, Request
    from fastapi.responses import Response

    @app.post("/v1/query", dependencies=[Depends(authorize)])
    async def query(body: QueryRequest):
        """Retrieve → rerank → generate with the pipeline config the server was started with."""
        if pipeline is None:
            raise ServeError(404, "no pipeline configured: start the server with --pipeline configs/eval/<name>.yaml.")
        if not body.query.strip():
            raise ServeError(422, "query is empty.")
        if body.reranker is not None and body.reranker not in pipeline.rerankers:
            raise ServeError(422, f"reranker '{body.reranker}' is not configured; choose one of "
                                  f"{', '.join(pipeline.rerankers)}.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, pipeline.query, body.query, body.reranker, body.top_n)

    @app.get("/info", dependencies=[Depends(authorize)])
    async def get_info():
        """The served model in text-embeddings-inference's ``/info`` shape, plus rerankforge's keys."""
        return info(cfg, registry, pipeline is not None)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": registry.default.source, "models": list(registry.by_name),
                "pipeline": pipeline is not None, "micro_batching": cfg.micro_batching}

    @app.get("/metrics")
    async def metrics(request: Request):
        """Prometheus text format: requests, latency, micro-batch sizes, queue depth (see ``serve.metrics``)."""
        text, content_type = app.state.metrics.render(request.headers.get("accept"))
        return Response(text, media_type=content_type)


def load_pipeline(path: str):
    cfg = load_config(EvalConfig, path)
    if cfg.first_stage.method == "auto":  # the pick needs a judge run over a query log: eval does it once
        raise ConfigError(f"{path}: first_stage.method=auto is picked by `rerankforge eval`; serve needs the first "
                          "stage it picked: set first_stage.method to bm25, dense or hybrid (an eval folder's "
                          "config.yaml holds the pick).")
    return Pipeline.from_config(cfg)


def serve(cfg: ServeConfig) -> None:
    """Load the model(s) (and pipeline), then run uvicorn until interrupted."""
    uvicorn = require("uvicorn", "rerankforge serve")
    app = create_app(cfg, pipeline=load_pipeline(cfg.pipeline) if cfg.pipeline else None)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")

"""``rerankforge serve --model runs/x/final [--pipeline configs/eval/covidqa.yaml] [key=value ...]``

Serves rerankers over HTTP with FastAPI + uvicorn, in the API shapes clients already speak: Cohere rerank
(``POST /v1/rerank``, ``POST /v2/rerank``), Hugging Face text-embeddings-inference (``POST /rerank`` with
``texts``), infinity (``POST /rerank`` with ``documents``) and, with a pipeline config, retrieve → rerank →
generate (``POST /v1/query``). ``GET /info`` (TEI's shape), ``GET /metrics`` (Prometheus), ``GET /health``; the
OpenAPI schema is at ``/openapi.json``. A request's ``model`` picks one of the configured rerankers
(``serve.registry``). Requests that arrive together share forward passes (``serve.batcher``); a request that
fails fails alone, and any unexpected error is a JSON answer (logged with its traceback), never a dropped
connection. Error bodies follow each client's convention (``serve.errors``).

Scores: ``relevance_score`` / ``score`` is the reranker's ``probability(logit)`` (calibrated when the checkpoint
carries a calibration, else the sigmoid); TEI's and infinity's ``raw_scores`` give the logit.

Long inputs (``models/pairs.py``): the query always keeps its first ``max_query_length`` tokens (the reranker's,
default 64). Cohere: a long document is split into overlapping chunks of what ``max_length`` leaves after the query
and scores as its best chunk (max pooling, as Cohere does); v2 first cuts it to ``max_tokens_per_doc`` tokens
(default 4096), v1 keeps at most ``max_chunks_per_doc`` chunks (default 10). TEI: ``truncate=false`` (default)
answers 413 for a (query, text) pair over ``max_length`` tokens; ``truncate=true`` keeps the text's start
(``truncation_direction="Right"``) or end ("Left"). infinity: truncated to ``max_length``, keeping the start.
"""

from rerankforge.serve.app import create_app, load_pipeline, serve
from rerankforge.serve.batcher import MicroBatcher
from rerankforge.serve.config import ServeConfig

__all__ = ["MicroBatcher", "ServeConfig", "create_app", "load_pipeline", "serve"]

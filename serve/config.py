"""``ServeConfig``: the server's settings (``rerankforge serve [--config x.yaml] [key=value ...]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class ServeConfig:
    """Server settings; limits answer with 413 naming the limit that was passed.

    Rerankers: ``model`` (one checkpoint) and/or ``models`` (several, by name: ``models={covid: runs/a/final,
    sci: BAAI/bge-reranker-base}``). ``model`` is served under ``model_name`` (default: ``model`` as given, the
    path or Hub id) and is the default reranker; without it, the first of ``models`` is. Every reranker shares the
    settings below (max_length, backend, ...). A request's ``model`` field picks one; see ``serve.registry``.
    """

    model: Optional[str] = None  # a rerankforge final/, a Hub cross-encoder id, or a LoRA adapter folder
    model_name: Optional[str] = None  # the name requests give `model` (default: `model` as given)
    models: dict[str, str] = field(default_factory=dict)  # more rerankers: name -> folder or Hub id
    pipeline: Optional[str] = None  # an eval config (configs/eval/*.yaml): enables POST /v1/query
    host: str = "127.0.0.1"  # the address to listen on; loopback by default: expose deliberately (e.g. 0.0.0.0)
    port: int = 8000  # the TCP port to listen on
    # tokens of a (query, document) pair a reranker reads; a longer pair is cut, chunked or refused, by endpoint and
    # request (truncate, max_chunks_per_doc, ...); null: each model's own (its tokenizer's model_max_length, what
    # training saved; 512 when the tokenizer gives none)
    max_length: Optional[int] = None
    batch_size: int = 32  # (query, document) pairs per forward pass
    device: Optional[str] = None  # e.g. cpu, cuda:0; null: CUDA when available, else the CPU
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"  # auto: bfloat16 on CUDA and CPUs with AMX or AVX512-BF16
    backend: Literal["torch", "openvino"] = "torch"  # openvino: CPU, pip install 'rerankforge[openvino]'
    quantize: Optional[Literal["int8"]] = None  # CPU; with openvino it needs `calibration` (or an exported folder)
    calibration: Optional[str] = None  # (query, passage) records or a mined training set (runs/mine/x)
    max_documents: int = 1000  # the most documents one request may send (more: 413)
    max_document_chars: int = 1_000_000  # the longest document accepted, in characters (longer: 413); see max_length
    max_body_bytes: int = 5_000_000  # the largest request body, in bytes; a larger one is answered 413 unread
    # score concurrent requests together, in shared forward passes; false: each request alone (still one at a time)
    micro_batching: bool = True
    batch_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_batch_pairs: int = 512  # the most (query, document) pairs one micro-batch gathers
    token_env: Optional[str] = None  # name of an env var holding a bearer token; unset: no auth

    def reranker_sources(self, required: bool = True) -> dict[str, str]:
        """Name -> folder or Hub id of every reranker to serve, the default first.

        Raises:
            ValueError: nothing to serve (when ``required``), or ``model_name`` naming an entry of ``models`` with
                another source.
        """
        sources = dict(self.models)
        if self.model:
            name = self.model_name or self.model
            if sources.get(name, self.model) != self.model:
                raise ValueError(f"model_name={name} is also a key of models (pointing at {sources[name]}, while "
                                 f"model={self.model}); give one of them another name.")
            sources.pop(name, None)
            sources = {name: self.model, **sources}
        if not sources and required:
            raise ValueError("No model to serve: pass --model PATH (a rerankforge final/ folder or Hub id), or "
                             "models={name: PATH, ...}.")
        return sources

"""``GET /info`` in text-embeddings-inference's shape, plus rerankforge's own keys.

TEI's keys: ``model_id`` (the default reranker's name), ``model_sha`` (null: a local folder has no revision),
``model_dtype``, ``model_type`` (``{"reranker": {"id2label", "label2id"}}``, from the checkpoint's config),
``max_input_length`` (tokens per pair), ``max_batch_tokens`` (``batch_size * max_length``: the most tokens of one
forward batch), ``max_batch_requests`` (null: micro-batches are bounded by pairs, ``max_batch_pairs``),
``max_client_batch_size`` (``max_documents``), ``auto_truncate`` (false: TEI's ``truncate`` defaults to false),
``tokenization_workers`` (1: pairs are tokenized on the model thread), ``version``, ``sha``, ``docker_label``.
TEI's ``max_concurrent_requests`` is left out: this server does not cap concurrent requests.

Ours: ``backend``, ``quantize``, ``calibrated`` (the default reranker maps logits through a fitted calibration),
``max_batch_pairs``, ``micro_batching``, ``pipeline`` and ``rerankers``: every served reranker by name with its
``model_id`` (folder or Hub id), ``max_input_length``, ``model_dtype``, ``calibrated`` and ``fusion`` (the
``{method, alpha}`` its ``fusion.json`` applies to requests that send ``first_stage_scores``; null without one).
"""

from __future__ import annotations

from importlib import metadata

from rerankforge.serve.config import ServeConfig
from rerankforge.serve.registry import Registry, Served


def version() -> str:
    try:
        return metadata.version("rerankforge")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def labels(served: Served) -> dict:
    """TEI's ``model_type`` of a one-logit cross-encoder: ``{"reranker": {"id2label", "label2id"}}``."""
    config = getattr(getattr(served.reranker, "model", None), "config", None)
    if config is None:  # an exported OpenVINO folder has no torch model in memory; its config.json is beside it
        try:
            # transformers imports torch (slow); only this path needs it
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(served.source)
        except (OSError, ValueError):
            config = None
    id2label = {str(k): v for k, v in (getattr(config, "id2label", None) or {0: "LABEL_0"}).items()}
    label2id = {k: int(v) for k, v in (getattr(config, "label2id", None) or {"LABEL_0": 0}).items()}
    return {"reranker": {"id2label": id2label, "label2id": label2id}}


def dtype_name(reranker) -> str:
    return str(getattr(reranker, "dtype", "float32")).removeprefix("torch.")


def fusion_of(served: Served):
    fusion = getattr(served.reranker, "fusion", None)
    return {"method": fusion["method"], "alpha": fusion["alpha"]} if fusion else None


def info(cfg: ServeConfig, registry: Registry, pipeline: bool) -> dict:
    default = registry.default
    reranker = default.reranker
    return {
        "model_id": default.name, "model_sha": None, "model_dtype": dtype_name(reranker),
        "model_type": labels(default), "max_input_length": reranker.max_length,
        "max_batch_tokens": getattr(reranker, "batch_size", cfg.batch_size) * reranker.max_length,
        "max_batch_requests": None, "max_client_batch_size": cfg.max_documents, "auto_truncate": False,
        "tokenization_workers": 1, "version": version(), "sha": None, "docker_label": None,
        "backend": cfg.backend, "quantize": cfg.quantize, "calibrated": default.calibrated,
        "max_batch_pairs": cfg.max_batch_pairs, "micro_batching": cfg.micro_batching, "pipeline": pipeline,
        "rerankers": {s.name: {"model_id": s.source, "max_input_length": s.reranker.max_length,
                               "model_dtype": dtype_name(s.reranker), "calibrated": s.calibrated,
                               "fusion": fusion_of(s)}
                      for s in registry},
    }

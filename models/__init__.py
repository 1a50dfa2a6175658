"""Model references, and (later) the reranker class and its checkpoints."""

from rerankforge.models.resolve import ModelNotFoundError, resolve_model

__all__ = ["ModelNotFoundError", "resolve_model"]

"""Model references, loading, and the reranker class."""

from rerankforge.models.resolve import ModelNotFoundError, resolve_model

__all__ = ["ModelNotFoundError", "Reranker", "resolve_model"]


def __getattr__(name):
    if name == "Reranker":  # lazy: importing torch is slow, resolve_model needs none of it
        from rerankforge.models.reranker import Reranker

        return Reranker
    raise AttributeError(name)

"""Optional cross-encoder rescoring of candidates, to drop likely false negatives before selection."""

from __future__ import annotations

from rerankforge.data_prep.config import RescoreConfig
from rerankforge.models.resolve import resolve_model


def rescore_pairs(config: RescoreConfig, pairs: list[tuple[str, str]], device: str | None = None) -> list[float]:
    """One-logit cross-encoder scores (the sigmoid, as ``CrossEncoder.predict``) of ``(query, passage)`` pairs, in
    order, through the same pair encoder as training and reranking (no length of either text fails)."""
    # rerankforge.models.reranker imports torch, which this module does not otherwise load
    from rerankforge.models.reranker import Reranker

    model = Reranker(resolve_model(config.cross_encoder).path, max_length=config.max_length, device=device,
                     batch_size=config.batch_size)
    return model.score_pairs(pairs, progress=True)

"""Optional cross-encoder rescoring of candidates, to drop likely false negatives before selection."""

from __future__ import annotations

from rerankforge.data_prep.config import RescoreConfig
from rerankforge.models.resolve import resolve_model


def rescore_pairs(config: RescoreConfig, pairs: list[tuple[str, str]], device: str | None = None) -> list[float]:
    """Cross-encoder scores (sigmoid for one-logit models) of ``(query, passage)`` pairs, in order."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(resolve_model(config.cross_encoder).path, max_length=config.max_length, device=device)
    scores = model.predict(pairs, batch_size=config.batch_size, show_progress_bar=True, convert_to_numpy=True)
    return [float(s) for s in scores]

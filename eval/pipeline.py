"""The retrieve → rerank → generate pipeline: one object, used by ``rerankforge eval`` and the server.

    pipeline = Pipeline.from_config(load_config(EvalConfig, "configs/eval/covidqa.yaml"))
    result = pipeline.query("What is the incubation period of COVID-19?", reranker="finetuned")
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rerankforge.eval.config import EvalConfig, RerankerConfig
from rerankforge.eval.generate import Generation, Generator, load_generator
from rerankforge.eval.retrieve import Hits, Retriever
from rerankforge.models.reranker import sigmoid

logger = logging.getLogger(__name__)


@dataclass
class Reranked:
    """A reranked run for one query, and the passages that pass ``threshold`` (best first)."""

    hits: Hits  # every first-stage hit: reranked top-`depth` (final scores), then the rest (negative scores)
    passing: list[str]  # doc ids at or above the threshold, in reranked order
    alone: Optional[Hits] = None  # with fusion: the reranker's own order (relevance scores), for the report


def _with_tail(head: list[tuple[str, float]], tail: Hits) -> Hits:
    """Sort ``head`` by score (stable) and append ``tail`` with scores -1, -2, ... so scores agree with order."""
    ranked = sorted(head, key=lambda item: -item[1])
    return ranked + [(d, -float(i)) for i, (d, _) in enumerate(tail, start=1)]


def rerank_hits(reranker, spec: RerankerConfig, query: str, hits: Hits, texts: dict[str, str],
                fusion: Optional[tuple[str, float, int]] = None) -> Reranked:
    """Rerank the top ``spec.depth`` of ``hits`` with ``reranker`` (None keeps the first-stage order).

    Reranked docs get their ``relevance_score`` (sigmoid, in (0, 1)), or with ``fusion=(method, alpha, rrf_k)`` the
    fused score of their logit and first-stage score; docs past the depth keep their first-stage order below
    them with scores -1, -2, .... ``threshold`` always applies to the relevance score.
    """
    from rerankforge.models.fusion import fuse

    head, tail = hits[: spec.depth], hits[spec.depth:]
    if reranker is None:
        return Reranked(list(hits), [d for d, _ in head])
    logits = reranker.score(query, [texts[d] for d, _ in head], raw=True)
    relevance = {d: sigmoid(x) for (d, _), x in zip(head, logits)}
    alone = _with_tail([(d, relevance[d]) for d, _ in head], tail)
    final = alone
    if fusion is not None:
        fused = fuse(logits, [s for _, s in head], *fusion)
        final = _with_tail([(d, float(f)) for (d, _), f in zip(head, fused)], tail)
    passing = [d for d, _ in final[: len(head)] if spec.threshold is None or relevance[d] >= spec.threshold]
    return Reranked(final, passing, alone if fusion is not None else None)


class Pipeline:
    """Holds the retriever, every configured reranker and the generator, loaded once.

    ``texts`` maps doc id to the text the models see (BEIR's ``title + " " + text``).
    """

    def __init__(self, cfg: EvalConfig, doc_ids: list[str], texts: dict[str, str], cache_dir: Path,
                 generator: Optional[Generator] = None, load_models: bool = True):
        import torch

        from rerankforge.models.reranker import Reranker

        cfg = self.cfg = cfg.resolved()
        self.texts = texts
        self.retriever = Retriever(cfg.retrieve, doc_ids, [texts[d] for d in doc_ids], cache_dir)
        with torch.random.fork_rng(devices=[]):  # seeds the loading only, not the caller's generator
            torch.manual_seed(cfg.seed)  # an untrained head is drawn from the global generator
            self.rerankers = {
                name: (Reranker(spec.model, max_length=spec.max_length, device=cfg.device, batch_size=spec.batch_size,
                                gguf_file=spec.gguf_file, dtype=spec.dtype, backend=spec.backend, quantize=spec.quantize,
                                calibration=spec.calibration) if spec.model and load_models else None)
                for name, spec in cfg.rerankers.items()}
        self.fusion = {name: self._fusion(name, spec) for name, spec in cfg.rerankers.items()}
        self.generator = generator if generator is not None else load_generator(cfg.generate, cfg.device)

    def _fusion(self, name: str, spec: RerankerConfig) -> Optional[tuple[str, float, int]]:
        """``(method, alpha, rrf_k)`` of a reranker's fusion, or None; warns when the weight was fitted on
        another first stage or depth than this pipeline's."""
        from rerankforge.models.fusion import read_fusion, resolve_fusion
        from rerankforge.utils.config import ConfigError

        if not spec.model:
            return None
        try:
            resolved = resolve_fusion(spec.model, spec.fusion.method, spec.fusion.alpha)
        except ValueError as exc:
            raise ConfigError(f"rerankers.{name}: {exc}") from None
        if resolved is None:
            return None
        fitted = read_fusion(spec.model) if "auto" in (spec.fusion.method, spec.fusion.alpha) else None
        if fitted is None:
            return (*resolved, spec.fusion.rrf_k)
        fitted_on = fitted.get("first_stage", {}).get("method")
        if fitted_on not in (None, self.cfg.retrieve.method) or fitted.get("depth", spec.depth) != spec.depth:
            logger.warning("rerankers.%s: its fusion weight was fitted on the %s first stage at depth %s; this "
                           "pipeline reranks %s at depth %d. Rerank the same first stage and depth, or set "
                           "rerankers.%s.fusion.alpha.", name, fitted_on, fitted.get("depth"), self.cfg.retrieve.method,
                           spec.depth, name)
        return (*resolved, int(fitted.get("rrf_k", spec.fusion.rrf_k)))

    @classmethod
    def from_config(cls, cfg: EvalConfig) -> "Pipeline":
        from rerankforge.data_prep.encode import default_cache_dir, doc_text
        from rerankforge.eval.data import load_eval_data

        data = load_eval_data(cfg.data, need_qrels=False)
        cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
        doc_ids = sorted(data.corpus)
        return cls(cfg, doc_ids, {d: doc_text(data.corpus[d]) for d in doc_ids}, cache)

    def rerank(self, name: str, query: str, hits: Hits) -> Reranked:
        return rerank_hits(self.rerankers[name], self.cfg.rerankers[name], query, hits, self.texts, self.fusion[name])

    def generate(self, query: str, doc_ids: list[str], top_n: Optional[int] = None) -> Optional[Generation]:
        if self.generator is None:
            return None
        return self.generator.generate(query, [self.texts[d] for d in doc_ids[: top_n or self.cfg.generate.top_n]])

    def query(self, query: str, reranker: Optional[str] = None, top_n: Optional[int] = None) -> dict:
        """Answer one query: ``{answer, passages: [{doc_id, text, score}], prompt_tokens, timings_ms}``.

        ``reranker`` names one of ``cfg.rerankers`` (default: the last, usually the fine-tuned one).
        """
        name = reranker or list(self.rerankers)[-1]
        if name not in self.rerankers:
            raise KeyError(f"Unknown reranker '{name}'; configured: {', '.join(self.rerankers)}.")
        top_n = top_n or self.cfg.generate.top_n
        start = time.perf_counter()
        hits = self.retriever.search([query])[0]
        t_retrieve = time.perf_counter()
        reranked = self.rerank(name, query, hits)
        t_rerank = time.perf_counter()
        generation = self.generate(query, reranked.passing, top_n)
        t_generate = time.perf_counter()
        scores = dict(reranked.hits)
        return {
            "reranker": name,
            "answer": generation.answer if generation else None,
            "prompt_tokens": generation.prompt_tokens if generation else 0,
            "fusion": None if self.fusion[name] is None else dict(zip(("method", "alpha"), self.fusion[name][:2])),
            "passages": [{"doc_id": d, "text": self.texts[d], "score": scores[d]} for d in reranked.passing[:top_n]],
            "timings_ms": {"retrieve": 1000 * (t_retrieve - start), "rerank": 1000 * (t_rerank - t_retrieve),
                           "generate": 1000 * (t_generate - t_rerank), "total": 1000 * (t_generate - start)},
        }

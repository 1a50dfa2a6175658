"""The retrieve → rerank → generate pipeline: one object, used by ``rerankforge eval`` and the server.

    pipeline = Pipeline.from_config(load_config(EvalConfig, "configs/eval/covidqa.yaml"))
    result = pipeline.query("What is the incubation period of COVID-19?", reranker="finetuned")
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from rerankforge.core.config import ConfigError
from rerankforge.core.io import resolve_cache_dir
from rerankforge.eval.config import EvalConfig, RerankerConfig
from rerankforge.eval.cutoff import CONFIGURED, Sent, cut, cutoff_points
from rerankforge.eval.data import load_eval_data
from rerankforge.eval.generate import Generation, Generator, TokenCounter, load_generator
from rerankforge.eval.retrieve import Hits, Retriever
from rerankforge.models.calibration import probability_of, sigmoid
from rerankforge.models.fusion import fuse, read_fusion, resolve_fusion
from rerankforge.models.judge import Judge
from rerankforge.retrieval.chunking import Documents, pool, split_corpus
from rerankforge.retrieval.corpus_store import corpus_ids, texts_by_id, texts_in_order

logger = logging.getLogger(__name__)


@dataclass
class Reranked:
    """A reranked run for one query, and the passages that pass ``threshold`` (best first)."""

    hits: Hits  # every first-stage hit: reranked top-`depth` (final scores), then the rest (negative scores)
    passing: list[str]  # doc ids at or above the threshold, in reranked order
    alone: Optional[Hits] = None  # with fusion: the reranker's own order (relevance scores), for the report
    evidence: dict[str, str] = field(default_factory=dict)  # chunked documents: doc id -> its best passage id
    # doc id -> the reranker's raw logit of the passage a generator reads (a chunked document's best passage)
    logits: dict[str, float] = field(default_factory=dict)

    @property
    def passages(self) -> list[str]:
        """The passage ids behind ``passing`` (what a generator reads): a chunked document's best passage."""
        return [self.evidence.get(d, d) for d in self.passing]


def _with_tail(head: list[tuple[str, float]], tail: Hits) -> Hits:
    """Sort ``head`` by score (stable) and append ``tail`` with scores -1, -2, ... so scores agree with order."""
    ranked = sorted(head, key=lambda item: -item[1])
    return ranked + [(d, -float(i)) for i, (d, _) in enumerate(tail, start=1)]


def _score_documents(reranker, query: str, doc_ids: list[str], texts: dict[str, str], documents: Documents,
                     similarity=None) -> tuple[list[float], dict[str, tuple[str, float]]]:
    """One logit per document pooled from its passages' logits (``sum`` pools relevance scores), and each
    document's best passage with its logit. The passages scored: ``documents.to_read`` (with ``similarity``, the
    first stage's scores of passage ids for the query)."""
    passages = [(d, p) for d, ps in documents.to_read(doc_ids, similarity).items() for p in ps]
    logits = reranker.score(query, [texts[p] for _, p in passages], raw=True)
    grouped: dict[str, list[tuple[str, float]]] = {}
    for (d, p), x in zip(passages, logits):
        grouped.setdefault(d, []).append((p, x))
    values = {d: [sigmoid(x) if documents.aggregate == "sum" else x for _, x in v] for d, v in grouped.items()}
    best = {d: max(v, key=lambda item: item[1]) for d, v in grouped.items()}
    return [pool(values[d], documents.aggregate) for d in doc_ids], best


def _yaml(value) -> str:
    """A value as an override spells it (``null`` for None)."""
    return "null" if value is None else str(value)


def rerank_hits(reranker, spec: RerankerConfig, query: str, hits: Hits, texts: dict[str, str],
                fusion: Optional[tuple[str, float, int]] = None, documents: Optional[Documents] = None,
                similarity=None) -> Reranked:
    """Rerank the top ``spec.depth`` of ``hits`` with ``reranker`` (None keeps the first-stage order).

    Reranked docs get their ``relevance_score`` (sigmoid, in (0, 1)), or with ``fusion=(method, alpha, rrf_k)`` the
    fused score of their logit and first-stage score; docs past the depth keep their first-stage order below
    them with scores -1, -2, .... ``threshold`` always applies to the relevance score. With ``documents`` the hits
    are documents, each scored from its passages (``documents.aggregate``: MaxP, FirstP or sum; ``similarity``
    picks the ``documents.read`` passages of each that are scored).
    """
    head, tail = hits[: spec.depth], hits[spec.depth:]
    if reranker is None:
        evidence = {d: documents.scored(d)[0] for d, _ in head} if documents is not None else {}
        return Reranked(list(hits), [d for d, _ in head], evidence=evidence)
    if documents is None:
        logits = reranker.score(query, [texts[d] for d, _ in head], raw=True)
        evidence, read = {}, {d: x for (d, _), x in zip(head, logits)}
    else:
        logits, best = _score_documents(reranker, query, [d for d, _ in head], texts, documents, similarity)
        evidence, read = {d: p for d, (p, _) in best.items()}, {d: x for d, (_, x) in best.items()}
    relevance = {d: min(x, 1.0) if documents is not None and documents.aggregate == "sum" else sigmoid(x)
                 for (d, _), x in zip(head, logits)}
    alone = _with_tail([(d, relevance[d]) for d, _ in head], tail)
    final = alone
    if fusion is not None:
        fused = fuse(logits, [s for _, s in head], *fusion)
        final = _with_tail([(d, float(f)) for (d, _), f in zip(head, fused)], tail)
    passing = [d for d, _ in final[: len(head)] if spec.threshold is None or relevance[d] >= spec.threshold]
    return Reranked(final, passing, alone if fusion is not None else None, evidence, read)


class Pipeline:
    """Holds the retriever, every configured reranker and the generator, loaded once.

    ``texts`` maps doc id to the text the models see (BEIR's ``title + " " + text``). With ``documents`` (a
    chunked corpus, ``data.chunking.mode=all``) ``doc_ids``/``texts`` are passages, and retrieval, reranking and
    the runs are per document.
    """

    def __init__(self, cfg: EvalConfig, doc_ids: list[str], texts: dict[str, str], cache_dir: Path,
                 generator: Optional[Generator] = None, load_models: bool = True,
                 documents: Optional[Documents] = None):
        # torch is slow to import; only this path needs it
        import torch

        cfg = self.cfg = cfg.resolved()
        self.texts, self.documents = texts, documents
        self.retriever = Retriever(cfg.first_stage, cfg.retrieve.top_k, doc_ids, texts_in_order(texts, doc_ids),
                                   cache_dir, documents=documents)
        with torch.random.fork_rng(devices=[]):  # seeds the loading only, not the caller's generator
            torch.manual_seed(cfg.seed)  # an untrained head is drawn from the global generator
            self.rerankers = {name: self._load(spec, cache_dir) if spec.reranks and load_models else None
                              for name, spec in cfg.rerankers.items()}
        self.fusion = {name: self._fusion(name, spec) for name, spec in cfg.rerankers.items()}
        self.generator = generator if generator is not None else load_generator(cfg.generate, cfg.device)
        self._token_counter = None

    def _load(self, spec: RerankerConfig, cache_dir: Path):
        """The scorer of one row: a cross-encoder, or an LLM judge (journalled under ``cache_dir``)."""
        # rerankforge.models.reranker imports torch, which this module does not otherwise load
        from rerankforge.models.reranker import Reranker

        if spec.kind == "llm":
            return Judge(spec.llm, cache_dir)
        return Reranker(spec.model, max_length=spec.max_length, device=self.cfg.device, batch_size=spec.batch_size,
                        gguf_file=spec.gguf_file, dtype=spec.dtype, backend=spec.backend, quantize=spec.quantize,
                        calibration=spec.calibration, max_query_length=spec.max_query_length,
                        max_passage_tokens=spec.max_passage_tokens)

    def _fusion(self, name: str, spec: RerankerConfig) -> Optional[tuple[str, float, int]]:
        """``(method, alpha, rrf_k)`` of a reranker's fusion, or None; warns when the weight was fitted on
        another first stage or depth than this pipeline's."""
        if not spec.model or spec.kind == "llm":
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
        if fitted_on not in (None, self.cfg.first_stage.method) or fitted.get("depth", spec.depth) != spec.depth:
            logger.warning("rerankers.%s: its fusion weight was fitted on the %s first stage at depth %s; this "
                           "pipeline reranks %s at depth %d. Rerank the same first stage and depth, or set "
                           "rerankers.%s.fusion.alpha.", name, fitted_on, fitted.get("depth"), self.cfg.first_stage.method,
                           spec.depth, name)
        if fitted.get("max_passage_tokens") != spec.max_passage_tokens:
            logger.warning("rerankers.%s: its fusion weight was fitted on dev scores read with max_passage_tokens=%s "
                           "(null: long passages cut); this pipeline reads max_passage_tokens=%s. Train with "
                           "data.dev_max_passage_tokens=%s, or set rerankers.%s.max_passage_tokens=%s.", name,
                           *map(_yaml, (fitted.get("max_passage_tokens"), spec.max_passage_tokens,
                                        spec.max_passage_tokens)), name, _yaml(fitted.get("max_passage_tokens")))
        return (*resolved, int(fitted.get("rrf_k", spec.fusion.rrf_k)))

    @classmethod
    def from_corpus(cls, cfg: EvalConfig, corpus: dict[str, dict[str, str]], **kwargs) -> "Pipeline":
        """A pipeline over a BEIR corpus, chunked into passages first when ``data.chunking.mode=all``."""
        passages, documents = split_corpus(corpus, cfg.data.chunking, cfg.first_stage.encoder.name_or_path)
        ids = corpus_ids(passages)
        return cls(cfg, ids, texts_by_id(passages, ids), resolve_cache_dir(cfg.cache_dir), documents=documents,
                   **kwargs)

    @classmethod
    def from_config(cls, cfg: EvalConfig) -> "Pipeline":
        data = load_eval_data(cfg.data, need_qrels=False, cache_dir=resolve_cache_dir(cfg.cache_dir))
        return cls.from_corpus(cfg, data.corpus)

    def use_first_stage(self, method: str, why: Optional[str] = None) -> None:
        """Rerank ``method``'s candidates from now on (the encoder and the cached indexes are shared)."""
        if method != self.retriever.method:
            stage = self.retriever.stage
            self.retriever = Retriever(replace(stage.spec, method=method), self.retriever.top_k,
                                       stage.doc_ids, texts_in_order(self.texts, stage.doc_ids), stage.cache_dir,
                                       stage.encoder, self.documents)
        first_stage = self.cfg.first_stage
        first_stage.method, first_stage.reason = method, why or first_stage.reason
        self.fusion = {name: self._fusion(name, spec) for name, spec in self.cfg.rerankers.items()}  # warns anew

    def first_stage(self, query: str) -> Hits:
        """The first stage's top ``retrieve.top_k`` for one query (documents, when the corpus is chunked)."""
        return self.retriever.search([query])[0]

    def rerank(self, name: str, query: str, hits: Hits) -> Reranked:
        return rerank_hits(self.rerankers[name], self.cfg.rerankers[name], query, hits, self.texts, self.fusion[name],
                           self.documents, lambda passages: self.retriever.similarity(query, passages))

    def probabilities(self, name: str, reranked: Reranked) -> Optional[list[float]]:
        """Reranker ``name``'s own P(relevant) of each passage of ``reranked.passing`` (in that order; fusion
        orders, the reranker's logit gives the probability), or None for a row without a reranker."""
        reranker = self.rerankers[name]
        if reranker is None:
            return None
        probability = probability_of(reranker)
        return [probability(reranked.logits[d]) for d in reranked.passing]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the generator counts its prompt (``generate.token_counter`` without one)."""
        count = getattr(self.generator, "count_tokens", None)
        if count is None:
            self._token_counter = self._token_counter or TokenCounter(self.cfg.generate.token_counter)
            count = self._token_counter
        return count(text)

    def cut(self, name: str, reranked: Reranked, sweep: bool = True,
            top_n: Optional[int] = None) -> tuple[dict[str, Sent], Optional[list[float]]]:
        """What ``generate.cutoff`` (label ``CONFIGURED``) and, with ``sweep``, each sweep point sends from
        ``reranked.passages``, and the probabilities of the passing passages (None without a reranker).

        ``top_n`` (a request's) caps every cut-off, token_budget included, in place of ``generate.top_n``. Passage
        tokens are counted where a cut-off needs them, or for the report when a cut-off other than top_n is set.
        """
        g = self.cfg.generate if top_n is None else replace(self.cfg.generate, top_n=top_n)
        passages = reranked.passages[:top_n] if top_n is not None else reranked.passages
        probabilities = self.probabilities(name, reranked)
        if probabilities is not None:
            probabilities = probabilities[: len(passages)]
        points = cutoff_points(g, probabilities is not None)
        points = points if sweep else {CONFIGURED: points[CONFIGURED]}
        c = g.cutoff
        counted = any(p.kind == "token_budget" for p in points.values()) or \
            (sweep and (c.kind != "top_n" or bool(c.sweep.min_probability or c.sweep.token_budget)))
        texts = [self.texts[p] for p in passages]
        return cut(points, g, texts, probabilities, self.count_tokens if counted else None), probabilities

    def generate(self, query: str, passage_ids: list[str], top_n: Optional[int] = None) -> Optional[Generation]:
        """The generator's answer from the first ``top_n`` of ``passage_ids`` (default ``generate.top_n``)."""
        if self.generator is None:
            return None
        n = self.cfg.generate.top_n if top_n is None else top_n
        return self.generator.generate(query, [self.texts[p] for p in passage_ids[:n]])

    def query(self, query: str, reranker: Optional[str] = None, top_n: Optional[int] = None) -> dict:
        """Answer one query: ``{answer, passages: [{doc_id, passage_id, text, score, probability}], cutoff,
        prompt_tokens, timings_ms}``: the passages ``generate.cutoff`` sends, with the reranker's P(relevant) of
        each (None for a row without a reranker), and ``cutoff: {kind, passages, passage_tokens}``.

        ``reranker`` names one of ``cfg.rerankers`` (default: the last, usually the fine-tuned one); ``top_n``
        caps the passages sent (default ``generate.top_n``, which does not cap a token_budget cut-off).
        """
        name = reranker or list(self.rerankers)[-1]
        if name not in self.rerankers:
            raise KeyError(f"Unknown reranker '{name}'; configured: {', '.join(self.rerankers)}.")
        start = time.perf_counter()
        hits = self.first_stage(query)
        t_retrieve = time.perf_counter()
        reranked = self.rerank(name, query, hits)
        t_rerank = time.perf_counter()
        sent, probabilities = self.cut(name, reranked, sweep=False, top_n=top_n)
        n = sent[CONFIGURED].passages
        generation = self.generate(query, reranked.passages, n)
        t_generate = time.perf_counter()
        scores = dict(reranked.hits)
        return {
            "reranker": name,
            "answer": generation.answer if generation else None,
            "prompt_tokens": generation.prompt_tokens if generation else 0,
            "fusion": None if self.fusion[name] is None else dict(zip(("method", "alpha"), self.fusion[name][:2])),
            "cutoff": {"kind": sent[CONFIGURED].kind, "passages": n, "passage_tokens": sent[CONFIGURED].passage_tokens},
            "passages": [{"doc_id": d, "passage_id": p, "text": self.texts[p], "score": scores[d],
                          "probability": probabilities[i] if probabilities is not None else None}
                         for i, (d, p) in enumerate(zip(reranked.passing[:n], reranked.passages[:n]))],
            "timings_ms": {"retrieve": 1000 * (t_retrieve - start), "rerank": 1000 * (t_rerank - t_retrieve),
                           "generate": 1000 * (t_generate - t_rerank), "total": 1000 * (t_generate - start)},
        }

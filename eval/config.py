"""The schema of ``rerankforge eval`` configs (``configs/eval/*.yaml``): retrieve → rerank → generate."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional

from rerankforge.core.metrics import check_metric
from rerankforge.models.fusion import resolve_fusion
from rerankforge.models.judge import JudgeConfig, check_judge_config
from rerankforge.models.llm import LLMConfig, check_llm_config, llm_install_problems
from rerankforge.retrieval.config import (
    ChunkConfig,
    FirstStageConfig,
    SourceConfig,
    chunking_problems,
)

DEFAULT_PROMPT = (
    "Answer the question using only the passages below. Cite the passages you use as [1], [2], ...\n\n"
    "{passages}\n\nQuestion: {query}\nAnswer:"
)


@dataclass
class EvalDataConfig(SourceConfig):
    """The test split eval measures (``SourceConfig``; ``split`` defaults to test), with optional gold answers."""

    split: str = "test"  # the labels measured: path's qrels/<split>.tsv (unused when qrels is set)
    # off by default; mode=all: long documents become passages, and first stage, reranking and metrics are per
    # document (MaxP/FirstP/sum by chunking.aggregate); qrels name documents
    chunking: ChunkConfig = field(default_factory=lambda: ChunkConfig(mode="off"))
    # {"_id": query id, "answers": [str, ...]} per line; default <path>/answers.jsonl when it exists.
    # "none": no gold answers, even when <path>/answers.jsonl exists (e.g. a file of another shape).
    answers: Optional[str] = None
    # The field of each answers record holding its gold answers: a string (one answer) or a list of strings,
    # e.g. long_answer for PubMedQA-style records. null: read no answers (like answers: none).
    answers_field: Optional[str] = "answers"
    max_queries: Optional[int] = None  # the first N labelled queries (sorted by id): quick runs, tests


@dataclass
class PickConfig:
    """``first_stage.method=auto`` without labels: the first stage whose ranking agrees best with a judge's on
    unlabelled questions (``eval/pick.py``)."""

    queries: Optional[str] = None  # users' questions, no labels (a query log): BEIR queries .jsonl or .txt
    judge: str = "finetuned"  # the reranker of `rerankers` that judges the candidates
    pool: int = 10  # the judge scores the union of BM25's and dense's top `pool`
    max_queries: int = 300  # a seeded sample of this many questions


@dataclass
class RetrieveConfig:
    """How deep the first stage (``first_stage``) retrieves, what it is compared with, and how ``auto`` picks it."""

    top_k: int = 100  # candidates the first stage retrieves per query: the most a reranker reranks (its depth)
    # first stages whose metrics the report shows beside the configured one (the best of them is what every reranker
    # must beat); [] skips them
    compare: list[str] = field(default_factory=lambda: ["bm25", "dense", "hybrid"])
    pick: PickConfig = field(default_factory=PickConfig)


@dataclass
class FusionConfig:
    """Fuse the reranker with the first stage (``models/fusion.py``)."""

    # none; interpolation of z-scored scores; rrf of the two rankings; or auto: the method fitted at training time
    method: Literal["none", "auto", "interpolation", "rrf"] = "none"
    # auto: the weight fitted on the dev split (the checkpoint's fusion.json), or a number in [0, 1]: 1 is the
    # reranker alone, 0 the first stage alone
    alpha: str = "auto"
    rrf_k: int = 60  # rrf: alpha / (rrf_k + reranker rank) + (1 - alpha) / (rrf_k + first-stage rank)


@dataclass
class RerankerConfig:
    """One reranker of the comparison. ``model: null`` keeps the first-stage order (the "no reranker" row)."""

    # cross_encoder: `model` reranks; llm: an LLM judges the candidates (the `llm` block: model, backend, mode,
    # prices), and the report gives its tokens and cost per query beside its quality and latency
    kind: Literal["cross_encoder", "llm"] = "cross_encoder"
    model: Optional[str] = None  # a rerankforge final/, a Hub cross-encoder id, or a LoRA adapter folder
    gguf_file: Optional[str] = None  # a .gguf file inside `model`, loaded through transformers
    # rerank the first-stage top `depth` (null: all of retrieve.top_k); the rest keeps its first-stage order below
    depth: Optional[int] = None
    # tokens of each (query, passage) pair the reranker reads; null: the checkpoint's own (its tokenizer's
    # model_max_length, what training saved), as CrossEncoder(model) reads it
    max_length: Optional[int] = None
    max_query_length: int = 64  # tokens kept of a long query; the passage gets the rest (as in training)
    # null: a passage longer than a pair leaves is cut (as CrossEncoder(model) reads it). A number: up to that many
    # of its tokens are read as overlapping windows of max_length, and it scores as its best window (MaxP, as the
    # Cohere route reads long documents)
    max_passage_tokens: Optional[int] = None
    batch_size: int = 32  # (query, passage) pairs per forward pass
    # float32, bfloat16 (autocast on CPU) or auto: bfloat16 where it is fast (CUDA, CPUs with AMX or AVX512-BF16),
    # else float32
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    threshold: Optional[float] = None  # drop passages whose relevance_score (sigmoid) is below this
    backend: Literal["torch", "openvino"] = "torch"  # openvino: CPU, pip install 'rerankforge[openvino]'
    quantize: Optional[Literal["int8"]] = None  # CPU; with openvino it needs `calibration`
    calibration: Optional[str] = None  # (query, passage) records or a mined training set (runs/mine/x)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    # kind=llm: the judge, e.g. {base_url: http://127.0.0.1:8000/v1, model: <served name>} for any OpenAI-compatible
    # endpoint, or the offline SmolLM2 GGUF (model + gguf_file)
    llm: JudgeConfig = field(default_factory=JudgeConfig)

    @property
    def reranks(self) -> bool:
        """Whether this row reorders the first stage (a model, or an LLM judge)."""
        return self.kind == "llm" or bool(self.model)


@dataclass
class CutoffSweep:
    """Cut-offs evaluated beside ``generate.cutoff`` for the report's tokens-vs-answers trade-off (per reranker).

    Cost: each query gets one generation per distinct number of passages the sweep sends it, shared with
    ``top_n_sweep``, so at most one LLM call per query, reranker and sweep point (like one ``top_n_sweep``
    entry); points that send the same passages share one call."""

    min_probability: list[float] = field(default_factory=list)  # e.g. [0.3, 0.5, 0.7, 0.9]; needs a reranker
    token_budget: list[int] = field(default_factory=list)  # e.g. [256, 512, 1024]


@dataclass
class CutoffConfig:
    """Which of the reranked passages (best first, in the pipeline's final order) go to the generator."""

    # top_n: the first generate.top_n; min_probability: passages while the reranker's P(relevant) is at least
    # min_probability, at least min_passages and at most generate.top_n; token_budget: passages while their numbered
    # prompt blocks fit token_budget tokens, at least min_passages (generate.top_n does not cap it)
    kind: Literal["top_n", "min_probability", "token_budget"] = "top_n"
    # P(relevant): calibrated when the checkpoint has a calibration.json, else the sigmoid of its logit; rows without
    # a reranker (model: null) have none and send the top generate.top_n
    min_probability: float = 0.5
    # tokens the passages' prompt blocks may take, by the generator's own tokenizer (else generate.token_counter)
    token_budget: int = 1024
    min_passages: int = 1  # the fewest passages min_probability and token_budget send
    sweep: CutoffSweep = field(default_factory=CutoffSweep)


@dataclass
class GenerateConfig(LLMConfig):
    """The answer step; an LLM is configured with the keys of ``LLMConfig`` (``models/llm.py``)."""

    # none: no answers; extractive: the passages' sentences sharing most words with the query (no LLM);
    # transformers, llama_cpp, openai: an LLM client of models/llm.py (model, gguf_file, base_url, ...)
    kind: Literal["none", "extractive", "transformers", "llama_cpp", "openai"] = "extractive"
    top_n: int = 3  # passages sent to the generator (the cap of cutoff.kind=min_probability)
    cutoff: CutoffConfig = field(default_factory=CutoffConfig)  # how many of the reranked passages to send
    top_n_sweep: list[int] = field(default_factory=lambda: [1, 3, 5])  # for the F1-vs-passages plot
    prompt: str = DEFAULT_PROMPT  # the LLM's prompt; fields: {query}, {passages} (numbered blocks [i] text)
    max_passage_chars: int = 1500  # each passage is cut to this many characters for the generator
    sentences: int = 2  # extractive: sentences returned
    # Tokenizer that counts "tokens sent to the LLM" when the generator has none of its own (extractive).
    token_counter: str = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class EvalConfig:
    """``rerankforge eval``: several rerankers side by side over the same first stage, with answers."""

    MOVED: ClassVar[dict[str, str]] = {f"retrieve.{key}": f"first_stage.{key}" for key in (
        "method", "encoder", "index", "bm25", "rrf_k", "reason")}

    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    # the candidates every reranker reranks; method=auto picks dense, bm25 or hybrid by a judge's choices on
    # unlabelled questions (retrieve.pick)
    first_stage: FirstStageConfig = field(default_factory=FirstStageConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    # name -> reranker, in report order; the first is the baseline of the paired significance tests.
    # Empty means one row, "none": the first stage alone.
    rerankers: dict[str, RerankerConfig] = field(default_factory=dict)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    # ranking metrics in the report: ndcg, mrr, recall, map or precision, each optionally @k (e.g. ndcg@10)
    metrics: list[str] = field(default_factory=lambda: [
        "ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "mrr@10", "recall@10", "recall@100", "map"])
    device: Optional[str] = None  # the rerankers' and a transformers generator's, e.g. cpu, cuda:0; null: CUDA if any
    # where the report goes: report.md, report.json, per_query.jsonl, runs/*.trec, plots/, config.yaml, manifest.json
    output_dir: str = "runs/eval"
    cache_dir: Optional[str] = None  # embeddings + FAISS index; default ~/.cache/rerankforge (shared with mine)
    plots: bool = True  # draw the report's PNG plots (plots/*.png); false: none
    # Seeds the random head a checkpoint without a trained one gets (e.g. a bi-encoder as "base"), so reports repeat.
    seed: int = 42

    def resolved(self) -> "EvalConfig":
        """A copy with the defaults that depend on other keys filled in: no rerankers means one row "none";
        a reranker without ``depth`` reranks all of ``retrieve.top_k``. (Not a __post_init__: nested defaults
        of a schema are built once, before the YAML and overrides are merged.)"""
        cfg = copy.deepcopy(self)
        cfg.rerankers = cfg.rerankers or {"none": RerankerConfig()}
        for spec in cfg.rerankers.values():
            spec.depth = spec.depth or cfg.retrieve.top_k
        return cfg


def exported_int8(model: Optional[str]) -> bool:
    """Whether ``model`` is a folder holding an int8 OpenVINO model saved by ``rerankforge export``."""
    # rerankforge.models.openvino_backend imports torch, which this module does not otherwise load
    from rerankforge.models.openvino_backend import exported_model

    return bool(model) and exported_model(model, "int8") is not None


def check_eval_config(cfg: EvalConfig) -> list[str]:
    """Every problem that does not depend on the data, all at once (empty when fine)."""
    problems = []
    if not (cfg.data.path or (cfg.data.corpus and cfg.data.queries and cfg.data.qrels)):
        problems.append("data.path is not set: give a BEIR folder (data.path=...) or data.corpus, data.queries and "
                        "data.qrels.")
    if cfg.retrieve.top_k < 1:
        problems.append(f"retrieve.top_k must be >= 1, got {cfg.retrieve.top_k}.")
    problems += _pick_problems(cfg)
    problems += chunking_problems(cfg.data.chunking)
    for name, spec in cfg.rerankers.items():
        if spec.backend == "openvino" and spec.quantize and not spec.calibration and not exported_int8(spec.model):
            problems.append(f"rerankers.{name}: backend=openvino with quantize=int8 needs rerankers.{name}.calibration "
                            f"(a mined training set such as runs/mine/x, or query/passage records), or a model "
                            f"folder written by `rerankforge export --quantize int8`; got model={spec.model}.")
        if spec.depth is not None and not 1 <= spec.depth <= cfg.retrieve.top_k:
            problems.append(f"rerankers.{name}.depth must be in [1, retrieve.top_k={cfg.retrieve.top_k}], "
                            f"got {spec.depth}.")
        if spec.max_passage_tokens is not None and spec.max_passage_tokens < 1:
            problems.append(f"rerankers.{name}.max_passage_tokens must be >= 1 (read long passages as windows) or "
                            f"null (cut them), got {spec.max_passage_tokens}.")
        if spec.kind == "llm":
            problems += check_judge_config(spec.llm, f"rerankers.{name}.llm")
            problems += llm_install_problems(spec.llm, f"rerankers.{name}.llm")
            if spec.fusion.method != "none":
                problems.append(f"rerankers.{name}: kind=llm reranks alone; set rerankers.{name}.fusion.method=none.")
        elif spec.fusion.method != "none" and not spec.model:
            problems.append(f"rerankers.{name}.fusion.method={spec.fusion.method} needs rerankers.{name}.model: set "
                            f"the model, or fusion.method=none (the first stage alone is a row with model: null).")
        if spec.fusion.alpha != "auto":
            try:  # fusion.json itself is read when the model loads: the quickstart trains it after this check
                resolve_fusion(None, "interpolation", spec.fusion.alpha)
            except ValueError as exc:
                problems.append(f"rerankers.{name}: {exc}")
    for method in cfg.retrieve.compare:
        if method not in ("dense", "bm25", "hybrid"):
            problems.append(f"retrieve.compare has {method!r}; expected any of ['bm25', 'dense', 'hybrid'].")
    g = cfg.generate
    if g.top_n < 1 or any(n < 1 for n in g.top_n_sweep):
        problems.append(f"generate.top_n and generate.top_n_sweep must be >= 1, got {g.top_n} and {g.top_n_sweep}.")
    problems += check_cutoff(g, any(spec.reranks for spec in cfg.rerankers.values()))
    if g.kind not in ("none", "extractive"):
        problems += check_llm_config(g, "generate")
    if "{query}" not in g.prompt or "{passages}" not in g.prompt:
        problems.append("generate.prompt must contain {query} and {passages}.")
    for key in cfg.metrics:
        problem = check_metric(key)
        if problem:
            problems.append(f"metrics: {problem}")
    return problems


def _pick_problems(cfg: EvalConfig) -> list[str]:
    pick = cfg.retrieve.pick
    if cfg.first_stage.method != "auto":
        return []
    problems = []
    if not pick.queries:
        problems.append("first_stage.method=auto picks the first stage on unlabelled questions: set "
                        "retrieve.pick.queries (a queries .jsonl or .txt, one per line), or name the first stage "
                        "(dense, bm25 or hybrid).")
    judge = cfg.rerankers.get(pick.judge)
    if judge is None or not judge.model:
        problems.append(f"retrieve.pick.judge={pick.judge!r} must name a reranker with a model; rerankers here: "
                        f"{[n for n, s in cfg.rerankers.items() if s.model]}.")
    if pick.pool < 1 or pick.max_queries < 1:
        problems.append(f"retrieve.pick.pool and retrieve.pick.max_queries must be >= 1, got {pick.pool} and "
                        f"{pick.max_queries}.")
    return problems


def check_cutoff(g: GenerateConfig, has_reranker: bool) -> list[str]:
    """The problems of ``generate.cutoff`` (empty when fine); ``has_reranker``: some row has a model."""
    c, key, problems = g.cutoff, "generate.cutoff", []
    if not 0 <= c.min_probability <= 1:
        problems.append(f"{key}.min_probability must be a probability in [0, 1], got {c.min_probability}: set e.g. "
                        f"{key}.min_probability=0.5.")
    if c.token_budget < 1:
        problems.append(f"{key}.token_budget must be >= 1 token, got {c.token_budget}: set e.g. "
                        f"{key}.token_budget=1024.")
    if c.min_passages < 1:
        problems.append(f"{key}.min_passages must be >= 1, got {c.min_passages}.")
    bad = [p for p in c.sweep.min_probability if not 0 <= p <= 1]
    if bad:
        problems.append(f"{key}.sweep.min_probability has {bad}; expected probabilities in [0, 1].")
    bad = [b for b in c.sweep.token_budget if b < 1]
    if bad:
        problems.append(f"{key}.sweep.token_budget has {bad}; expected budgets >= 1 token.")
    by_probability = c.kind == "min_probability" or c.sweep.min_probability
    if by_probability and c.min_passages > g.top_n:
        problems.append(f"{key}.min_passages={c.min_passages} is above generate.top_n={g.top_n}, which caps "
                        f"min_probability: lower {key}.min_passages or raise generate.top_n.")
    if by_probability and not has_reranker:
        given = f"{key}.kind=min_probability" if c.kind == "min_probability" else f"{key}.sweep.min_probability"
        problems.append(f"{given} needs a reranker, but every row of rerankers has model: null (no probability to "
                        f"cut at): set rerankers.<name>.model, or use {key}.kind=top_n or token_budget.")
    if (c.sweep.min_probability or c.sweep.token_budget) and g.kind == "none":
        problems.append(f"{key}.sweep needs a generator, but generate.kind=none writes no answers: set "
                        f"generate.kind=extractive (no LLM) or an LLM, or empty the sweep.")
    return problems

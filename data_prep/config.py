"""The schema of ``rerankforge mine`` configs (``configs/data_prep/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from rerankforge.models.llm import LLMConfig


@dataclass
class FieldNames:
    """Column names in JSONL / CSV / Parquet / HF-dataset inputs (BEIR's by default)."""

    id: str = "_id"
    title: str = "title"
    text: str = "text"
    query_id: str = "query-id"
    doc_id: str = "corpus-id"
    score: str = "score"


@dataclass
class ChunkConfig:
    """How documents are split into passages, and how passage scores make a document's score.

    ``mode``: ``folders`` chunks folders of .txt/.md files only (their passages are the unit: ids
    ``<file>#<i>``, qrels name passages); ``all`` chunks every corpus format into passages ``<doc_id>#<i>`` and
    keeps documents as the unit: qrels name documents, runs and metrics are per document, each document scored
    from its passages by ``aggregate``: ``max`` (MaxP, its best passage), ``first`` (FirstP, its first passage
    only) or ``sum``. Mining then trains on the best passage of each relevant document. ``off``: no chunking.
    ``auto`` (``rerankforge quickstart`` only): ``all`` when most of the documents' text lies past what the
    reranker reads (its length check, ``data_prep/lengths.py``), else ``folders``. ``read_passages`` (``mode=all``,
    ``aggregate`` max or sum): how many of a document's passages a reranker scores, those the first stage finds
    most similar to the query; null scores every passage (the cost then grows with the documents' length).
    """

    size: int = 200
    overlap: int = 32
    unit: Literal["tokens", "chars"] = "tokens"
    mode: Literal["folders", "all", "off", "auto"] = "folders"
    aggregate: Literal["max", "first", "sum"] = "max"
    read_passages: Optional[int] = None

    def __post_init__(self) -> None:
        if self.size <= 0 or not 0 <= self.overlap < self.size:
            raise ValueError(f"data.chunking: need size > 0 and 0 <= overlap < size, got size={self.size}, "
                             f"overlap={self.overlap}.")
        if self.read_passages is not None and self.read_passages < 1:
            raise ValueError(f"data.chunking.read_passages must be >= 1 or null (every passage), got "
                             f"{self.read_passages}.")


@dataclass
class DataConfig:
    """Where the corpus, queries and qrels are.

    ``path`` is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv). ``corpus``, ``queries`` and
    ``qrels`` override single files: .jsonl, .csv, .tsv, .parquet, a saved HF dataset folder, or (corpus only)
    a folder of .txt/.md files.
    """

    path: Optional[str] = None
    corpus: Optional[str] = None
    queries: Optional[str] = None
    qrels: Optional[str] = None
    split: str = "train"
    eval_split: Optional[str] = "test"
    eval_qrels: Optional[str] = None
    # Negatives that come with the data, JSONL lines {"query_id": ..., "negative_ids": [...]}: they take a row's
    # first hard-negative slots (mining.mine_more: whether mined ones fill the rest)
    negatives: Optional[str] = None
    # Training queries with the same text as an evaluation query (SciFact has 2): warn, error, or drop them.
    eval_text_overlap: Literal["warn", "error", "drop"] = "warn"
    # A dev split carved from the labelled queries (seeded), written to dev.jsonl with its first-stage top
    # dev_depth and never trained on: training selects checkpoints and fits fusion on it. 0 turns it off.
    dev_fraction: float = 0.1
    dev_min_queries: int = 50  # where there are enough: never more than a quarter of the queries
    dev_depth: int = 100
    min_relevance: int = 1
    fields: FieldNames = field(default_factory=FieldNames)
    chunking: ChunkConfig = field(default_factory=ChunkConfig)
    # Where corpus texts live while stages run: memory (Python dicts), arrow (a memory-mapped Arrow table built
    # once under cache_dir, data_prep/corpus_store.py), or auto: arrow for corpus files of 256 MiB or more.
    # A folder of text files is always read into memory.
    storage: Literal["auto", "memory", "arrow"] = "auto"


@dataclass
class EncoderConfig:
    """The bi-encoder (sentence-transformers) that embeds corpus and queries."""

    name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2"
    batch_size: int = 64
    max_seq_length: Optional[int] = None
    device: Optional[str] = None
    query_prompt: Optional[str] = None
    corpus_prompt: Optional[str] = None
    # float32, bfloat16 or auto: bfloat16 where it is fast (CUDA, CPUs with AMX or AVX512-BF16: ~2-3x), else
    # float32. On torch it is autocast; on OpenVINO its inference precision (the weights stay float32). Part of
    # the embedding cache key.
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    # Several processes or devices, e.g. ["cuda:0", "cuda:1"]; uses sentence-transformers' multi-process pool.
    multi_process_devices: list[str] = field(default_factory=list)
    # torch, or openvino: the transformer converted to OpenVINO on the CPU (pip install 'rerankforge[openvino]'),
    # float32 or bfloat16 (dtype), or static int8 with quantize: int8 (calibrated on a seeded sample of 300 corpus
    # texts; on SciFact 1.8x faster encoding on a 2-core AMX Xeon, but ~20% of the mined negatives change, where
    # bfloat16, with the last layer's attention block kept in float32, is ~2x faster and keeps 95.8% of them:
    # bench/mining.py).
    # Both are part of the embedding cache key.
    backend: Literal["torch", "openvino"] = "torch"
    quantize: Optional[Literal["int8"]] = None

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in ("torch", "openvino"):
            problems.append(f"encoder.backend must be torch or openvino, got {self.backend!r}.")
        if self.quantize not in (None, "int8"):
            problems.append(f"encoder.quantize must be null or int8, got {self.quantize!r}.")
        elif self.quantize and self.backend != "openvino":
            problems.append(f"encoder.quantize={self.quantize} needs encoder.backend=openvino, got "
                            f"encoder.backend={self.backend}; set encoder.backend=openvino or encoder.quantize=null.")
        if self.backend == "openvino":
            if self.device not in (None, "cpu") or self.multi_process_devices:
                problems.append(f"encoder.backend=openvino runs in this process on the CPU (all its cores), got "
                                f"encoder.device={self.device!r}, encoder.multi_process_devices="
                                f"{list(self.multi_process_devices)}; set them to null and [] or use "
                                "encoder.backend=torch.")
        if problems:
            raise ValueError(" ".join(problems))


@dataclass
class IndexConfig:
    """FAISS index over the corpus embeddings, inner product: exact (``flat``), or for large corpora ``ivf``
    (inverted lists), ``ivfpq`` (inverted lists of product-quantized codes: ``pq_m`` bytes a vector at
    ``pq_nbits=8``, instead of 4 x dimension) or ``hnsw``.

    ``pq_m`` must divide the embedding dimension; null picks the largest divisor of it that is at most
    dimension / 8. ``train_size`` (ivf, ivfpq): vectors the coarse quantizer and PQ are trained on, an evenly
    spaced sample of the corpus; null means ``nlist * 256``, always capped by the corpus size. ``mmap`` loads the
    saved index memory-mapped (IVF types: the inverted lists; flat and hnsw: the vectors) instead of reading it
    into RAM. ``device``: ``auto`` searches on all GPUs when FAISS is a GPU build and sees one, else on the CPU;
    ``gpu`` requires that.
    """

    type: Literal["flat", "ivf", "ivfpq", "hnsw"] = "flat"
    nlist: int = 1024
    nprobe: int = 32
    pq_m: Optional[int] = None
    pq_nbits: int = 8
    train_size: Optional[int] = None
    hnsw_m: int = 32
    ef_search: int = 128
    mmap: bool = False
    device: Literal["auto", "cpu", "gpu"] = "auto"

    def __post_init__(self) -> None:
        problems = [f"index.{key} must be >= 1, got {value}." for key, value in
                    (("nlist", self.nlist), ("nprobe", self.nprobe), ("ef_search", self.ef_search))
                    if value < 1]
        problems += [f"index.{key} must be >= 1 or null, got {value}." for key, value in
                     (("pq_m", self.pq_m), ("train_size", self.train_size)) if value is not None and value < 1]
        if not 1 <= self.pq_nbits <= 16:
            problems.append(f"index.pq_nbits must be in [1, 16] (bits per sub-quantizer code; 8 is FAISS's usual "
                            f"and the only one GPU FAISS supports), got {self.pq_nbits}.")
        if self.hnsw_m < 2:
            problems.append(f"index.hnsw_m must be >= 2, got {self.hnsw_m}.")
        if problems:
            raise ValueError(" ".join(problems))


@dataclass
class BM25Config:
    """Lexical first stage (bm25s): English stemming (PyStemmer) and stopwords by default; ``null`` turns either off."""

    stemmer: Optional[str] = "english"  # a PyStemmer algorithm name
    stopwords: Optional[str] = "en"
    k1: float = 1.5
    b: float = 0.75


@dataclass
class RescoreConfig:
    """Optional cross-encoder that rescores candidates to drop likely false negatives."""

    cross_encoder: Optional[str] = None
    batch_size: int = 32
    max_length: int = 256


@dataclass
class MiningConfig:
    """Hard-negative selection; option names follow sentence-transformers' ``mine_hard_negatives``."""

    # auto: whichever of dense, bm25 and hybrid has the best nDCG@10 on the dev split (recorded in the manifest)
    candidates: Literal["dense", "bm25", "hybrid", "auto"] = "dense"
    range_min: int = 0
    range_max: int = 50
    max_score: Optional[float] = None
    min_score: Optional[float] = None
    absolute_margin: Optional[float] = None
    relative_margin: Optional[float] = 0.05
    num_negatives: int = 7
    sampling_strategy: Literal["top", "random"] = "top"
    random_negatives: int = 0  # uniform draws from outside the candidate window (ranks past range_max)
    # With negatives given in the data (data.negatives), also mine hard ones for the slots they leave; false: the
    # given ones only (rows short of num_negatives are filled with random negatives)
    mine_more: bool = True
    rrf_k: int = 60  # hybrid: reciprocal rank fusion constant
    bm25: BM25Config = field(default_factory=BM25Config)
    rescore: RescoreConfig = field(default_factory=RescoreConfig)
    # why candidates is set as it is, in words, for the manifest and the model card (a caller that chose it says
    # why; auto records the dev figures itself)
    candidates_reason: Optional[str] = None


@dataclass
class MineConfig:
    """``rerankforge mine``: corpus + labelled queries → a training set of hard negatives."""

    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    output_dir: str = "runs/mine"
    cache_dir: Optional[str] = None  # embeddings + FAISS index; default ~/.cache/rerankforge
    seed: int = 42
    max_queries: Optional[int] = None  # mine only the first N labelled queries (quick runs, tests)


def chunking_problems(chunking: ChunkConfig) -> list[str]:
    """``auto`` is decided by the quickstart's length check; a stage run on its own needs the mode itself."""
    if chunking.mode == "auto":
        return ["data.chunking.mode=auto is decided by `rerankforge quickstart` from the reranker's limits; run on "
                "its own, this stage needs all (long documents: passages, scored per document), folders or off."]
    return []


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
    if m.candidates == "auto" and cfg.data.dev_fraction <= 0:
        problems.append("mining.candidates=auto picks the first stage on the dev split, but data.dev_fraction is 0; "
                        "set data.dev_fraction (e.g. 0.1) or name the first stage (dense, bm25 or hybrid).")
    if not 0 <= cfg.data.dev_fraction < 1:
        problems.append(f"data.dev_fraction must be in [0, 1), got {cfg.data.dev_fraction}.")
    if cfg.data.dev_depth < 1:
        problems.append(f"data.dev_depth must be >= 1, got {cfg.data.dev_depth}.")
    if cfg.encoder.batch_size < 1:
        problems.append(f"encoder.batch_size must be >= 1, got {cfg.encoder.batch_size}.")
    problems += chunking_problems(cfg.data.chunking)
    if cfg.max_queries is not None and cfg.max_queries < 1:
        problems.append(f"max_queries must be >= 1 or null, got {cfg.max_queries}.")
    return problems


DEFAULT_SYNTH_PROMPT = (
    "{examples}Read the passage and write one question that it answers. Reply with the question only.\n\n"
    "Passage: {title}. {text}"
)


def _smollm2() -> LLMConfig:
    from rerankforge.models.llm import SMOLLM2, SMOLLM2_GGUF

    return LLMConfig(model=SMOLLM2, gguf_file=SMOLLM2_GGUF, max_new_tokens=40)


@dataclass
class SynthFilterConfig:
    """Which generated queries are kept; every drop is counted by its reason in the manifest."""

    min_words: int = 3
    max_words: int = 40
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
    ambiguity_margin: float = 0.02


@dataclass
class SynthConfig:
    """``rerankforge synth``: a corpus with no labelled queries → synthetic queries + qrels (BEIR layout).

    ``data`` names the corpus (``data.path``'s corpus.jsonl or ``data.corpus``, any corpus format mining reads).
    ``prompt`` fields: ``{title}``, ``{text}`` (the passage, cut to ``max_passage_words``) and ``{examples}`` (the
    few-shot block built from ``examples``, empty without them).
    """

    data: DataConfig = field(default_factory=DataConfig)
    generator: LLMConfig = field(default_factory=_smollm2)
    prompt: str = DEFAULT_SYNTH_PROMPT
    examples: Optional[str] = None  # a queries file of the user's own queries (.jsonl as BEIR, or .txt one per line)
    num_examples: int = 3
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
    extra_temperature: float = 0.7
    first_stage: Literal["dense", "bm25", "hybrid"] = "hybrid"  # the round-trip filter's retriever
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    rrf_k: int = 60
    filters: SynthFilterConfig = field(default_factory=SynthFilterConfig)
    max_errors: int = 20  # generator errors (each counted, the passage retried on the next run) before stopping
    dev_fraction: float = 0.0  # also write qrels/dev.tsv from this share of the kept queries (mining carves its own)
    mix_with: Optional[str] = None  # a qrels file of real labels (queries from data's queries file) added in
    output_dir: str = "runs/synth"
    cache_dir: Optional[str] = None  # embeddings + FAISS index, shared with mine and eval
    seed: int = 42


def check_synth_config(cfg: SynthConfig) -> list[str]:
    """Every problem with ``cfg`` that does not depend on the data, all at once (empty when fine)."""
    from rerankforge.models.llm import check_llm_config

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
    return problems

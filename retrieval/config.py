"""The corpus and first-stage blocks every stage shares: where the data is, how it is chunked, the encoder, the
FAISS index and BM25."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


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
class SourceConfig:
    """Where the corpus, queries and qrels are: the data block every stage reads, which mining's ``DataConfig`` and
    eval's ``EvalDataConfig`` extend with their own keys.

    ``path`` is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv). ``corpus``, ``queries`` and
    ``qrels`` override single files: .jsonl, .csv, .tsv, .parquet, a saved HF dataset folder, or (corpus only)
    a folder of .txt/.md files.
    """

    path: Optional[str] = None
    corpus: Optional[str] = None
    queries: Optional[str] = None
    qrels: Optional[str] = None
    split: str = "train"
    fields: FieldNames = field(default_factory=FieldNames)
    chunking: ChunkConfig = field(default_factory=ChunkConfig)
    # Where corpus texts live while stages run: memory (Python dicts), arrow (a memory-mapped Arrow table built
    # once under cache_dir, retrieval/corpus_store.py), or auto: arrow for corpus files of 256 MiB or more.
    # A folder of text files is always read into memory.
    storage: Literal["auto", "memory", "arrow"] = "auto"


@dataclass
class DataConfig(SourceConfig):
    """The labelled data mining reads (``SourceConfig``), the split it must not train on, and the dev split it
    carves."""

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
    # texts). int8 changes more of the mined negatives than bfloat16 does; bench/README.md (bench/mining.py) has
    # the speeds and agreements. Both are part of the embedding cache key.
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
class FirstStageConfig:
    """The first stage, one block wherever a stage retrieves (mine, synth, eval, serve): ``dense`` (the
    bi-encoder and FAISS), ``bm25`` (bm25s) or ``hybrid`` (reciprocal rank fusion of the two, constant ``rrf_k``).
    ``auto`` is chosen by the stage: mining picks the best of the three on its dev split, eval the one whose ranking
    agrees best with a judge's on a query log (``retrieve.pick``); synth needs a named one. ``reason`` says why
    this one, in words, for the manifest, the report and the model card."""

    method: Literal["dense", "bm25", "hybrid", "auto"] = "hybrid"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    rrf_k: int = 60
    reason: Optional[str] = None

    @property
    def uses_encoder(self) -> bool:
        return self.method != "bm25"

    def describe(self) -> dict:
        """What identifies the stage's ranking, without the settings it does not use."""
        return {"method": self.method, "rrf_k": self.rrf_k if self.method == "hybrid" else None,
                "encoder": self.encoder.name_or_path if self.uses_encoder else None,
                "bm25": vars(self.bm25) if self.method != "dense" else None}


def chunking_problems(chunking: ChunkConfig) -> list[str]:
    """``auto`` is decided by the quickstart's length check; a stage run on its own needs the mode itself."""
    if chunking.mode == "auto":
        return ["data.chunking.mode=auto is decided by `rerankforge quickstart` from the reranker's limits; run on "
                "its own, this stage needs all (long documents: passages, scored per document), folders or off."]
    return []

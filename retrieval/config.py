"""The corpus and first-stage blocks every stage shares: where the data is, how it is chunked, the encoder, the
FAISS index and BM25."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class FieldNames:
    """Column names in JSONL / CSV / Parquet / HF-dataset inputs (BEIR's by default)."""

    id: str = "_id"  # the id column of corpus and queries records
    title: str = "title"  # the corpus title column; a record without one gets an empty title
    text: str = "text"  # the text column of corpus and queries records
    query_id: str = "query-id"  # the qrels column naming the query
    doc_id: str = "corpus-id"  # the qrels column naming the document
    score: str = "score"  # the qrels column of relevance judgements (integers, higher is more relevant)


@dataclass
class ChunkConfig:
    """How documents are split into passages, and how passage scores make a document's score."""

    size: int = 200  # passage length, in `unit`s
    overlap: int = 32  # `unit`s consecutive passages share (0 <= overlap < size)
    unit: Literal["tokens", "chars"] = "tokens"  # tokens of the bi-encoder's tokenizer (first_stage.encoder), or chars
    # folders: chunk folders of .txt/.md files only, their passages the unit (ids <file>#<i>, qrels name passages);
    # all: chunk every corpus format into passages <doc_id>#<i> but keep documents the unit (qrels, runs and metrics
    # per document, scored from its passages by `aggregate`; mining trains on each relevant document's best passage);
    # off: no chunking; auto (rerankforge quickstart only): all when most of the documents' text lies past what the
    # reranker reads (its length check, data_prep/lengths.py), else folders
    mode: Literal["folders", "all", "off", "auto"] = "folders"
    # mode=all: a document's score from its passages': max (MaxP, its best passage), first (FirstP, its first) or sum
    aggregate: Literal["max", "first", "sum"] = "max"
    # mode=all, aggregate max or sum: how many of a document's passages a reranker scores, those the first stage finds
    # most similar to the query; null scores every passage (the cost then grows with the documents' length)
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
    eval's ``EvalDataConfig`` extend with their own keys."""

    path: Optional[str] = None  # a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
    # a corpus file in place of path's corpus.jsonl: .jsonl, .csv, .tsv, .parquet, a saved HF dataset folder, or a
    # folder of .txt/.md files
    corpus: Optional[str] = None
    queries: Optional[str] = None  # a queries file in place of path's queries.jsonl (.jsonl, .csv, .tsv, .parquet, HF)
    qrels: Optional[str] = None  # a qrels file in place of path's qrels/<split>.tsv (.jsonl, .csv, .tsv, .parquet, HF)
    split: str = "train"  # the labels this stage reads: path's qrels/<split>.tsv (unused when qrels is set)
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

    # The evaluation split mining must not train on (path's qrels/<eval_split>.tsv): a training query id found there is
    # an error, a training query with the same text is handled by eval_text_overlap. null: no check.
    eval_split: Optional[str] = "test"
    eval_qrels: Optional[str] = None  # a qrels file for that check, in place of path's qrels/<eval_split>.tsv
    # Negatives that come with the data, JSONL lines {"query_id": ..., "negative_ids": [...]}: they take a row's
    # first hard-negative slots (mining.mine_more: whether mined ones fill the rest)
    negatives: Optional[str] = None
    # Training queries with the same text as an evaluation query (SciFact has 2): warn, error, or drop them.
    eval_text_overlap: Literal["warn", "error", "drop"] = "warn"
    # A dev split carved from the labelled queries (seeded), written to dev.jsonl with its first-stage top
    # dev_depth and never trained on: training selects checkpoints and fits fusion on it. 0 turns it off.
    dev_fraction: float = 0.1
    dev_min_queries: int = 50  # the dev split's least size where there are enough queries (never over a quarter)
    dev_depth: int = 100  # first-stage candidates dev.jsonl keeps per dev query: the deepest training can rerank on dev
    min_relevance: int = 1  # qrels judgements of at least this are positives; a query with none is skipped (warned)


@dataclass
class EncoderConfig:
    """The bi-encoder (sentence-transformers) that embeds corpus and queries."""

    name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2"  # a sentence-transformers model: Hub id or folder
    batch_size: int = 64  # texts per encoding batch
    max_seq_length: Optional[int] = None  # tokens of a text the bi-encoder reads, the rest cut; null: the model's own
    device: Optional[str] = None  # e.g. cpu, cuda:0; null: sentence-transformers' choice (a GPU when there is one)
    query_prompt: Optional[str] = None  # text put before every query, for models trained with one (E5: "query: ")
    corpus_prompt: Optional[str] = None  # text put before every corpus passage (E5: "passage: "); null: none
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
    quantize: Optional[Literal["int8"]] = None  # int8 (needs backend=openvino), or null: dtype's precision

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
    """FAISS index over the corpus embeddings, inner product (cosine: the embeddings are normalised)."""

    # flat: exact; for large corpora ivf (inverted lists), ivfpq (inverted lists of product-quantized codes: pq_m
    # bytes a vector at pq_nbits=8, instead of 4 x dimension) or hnsw (a neighbour graph)
    type: Literal["flat", "ivf", "ivfpq", "hnsw"] = "flat"
    nlist: int = 1024  # ivf, ivfpq: inverted lists (k-means centroids), lowered for a small corpus; a change rebuilds
    nprobe: int = 32  # ivf, ivfpq: lists searched per query; more finds more true neighbours, slower (search time only)
    # ivfpq: bytes a vector (sub-quantizers); must divide the embedding dimension; null: the largest divisor of it that
    # is at most dimension / 8
    pq_m: Optional[int] = None
    pq_nbits: int = 8  # ivfpq: bits per sub-quantizer code, 1 to 16 (8 is FAISS's usual and all GPU FAISS supports)
    # ivf, ivfpq: vectors the coarse quantizer and PQ are trained on, an evenly spaced sample of the corpus; null:
    # nlist * 256, always capped by the corpus size
    train_size: Optional[int] = None
    hnsw_m: int = 32  # hnsw: graph neighbours per vector (>= 2); more is more accurate, larger and slower to build
    ef_search: int = 128  # hnsw: candidates kept while searching; more is more accurate and slower (search time only)
    # load the saved index memory-mapped (IVF types: the inverted lists; flat and hnsw: the vectors) instead of reading
    # it into RAM: for indexes larger than memory
    mmap: bool = False
    # auto: search on all GPUs when FAISS is a GPU build and sees one (hnsw stays on the CPU), else on the CPU; gpu:
    # require that (an error otherwise); cpu: always the CPU
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
    stopwords: Optional[str] = "en"  # a bm25s stopword list (e.g. en) removed from corpus and queries; null keeps them
    k1: float = 1.5  # term-frequency saturation: higher lets a repeated word count for more (usual: 1.2 to 2)
    b: float = 0.75  # document-length normalisation, from 0 (none) to 1 (full)


@dataclass
class FirstStageConfig:
    """The first stage, one block wherever a stage retrieves (mine, synth, eval, serve)."""

    # dense (the bi-encoder and FAISS), bm25 (bm25s) or hybrid (reciprocal rank fusion of the two); auto is chosen by
    # the stage: mining picks the best of the three on its dev split, eval the one whose ranking agrees best with a
    # judge's on a query log (retrieve.pick); synth needs a named one
    method: Literal["dense", "bm25", "hybrid", "auto"] = "hybrid"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    rrf_k: int = 60  # hybrid: each ranking adds 1 / (rrf_k + rank) to a document's score; larger evens out the ranks
    # why this first stage, in words, for the manifest, the report and the model card; null: the stage says it
    # (the figures auto picked it by, or that the config named it)
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

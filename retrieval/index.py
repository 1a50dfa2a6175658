"""FAISS index over normalised embeddings (inner product = cosine): build, save, load, search.

Every index type is built on the CPU with FAISS's ``index_factory`` and saved beside the embeddings, under a
name that holds its build parameters (a changed ``nlist``, ``pq_m`` or ``train_size`` builds a new index; the
search-time ``nprobe`` and ``ef_search`` do not). For corpora larger than RAM, FAISS offers:

- ``IndexConfig.mmap``: ``faiss.read_index(path, faiss.IO_FLAG_MMAP)`` maps an IVF index's inverted lists from
  the file (``OnDiskInvertedLists``); ``faiss.IO_FLAG_MMAP_IFC`` maps the vectors of flat and HNSW indexes.
- ``ivfpq``: product-quantized codes, ``pq_m`` bytes a vector at 8 bits instead of 4 bytes a dimension.
- Not used here: ``faiss.contrib.ondisk.merge_ondisk`` builds one IVF index from shards trained on a shared
  quantizer, and ``IndexShards`` searches several indexes as one.

Search runs on all GPUs (``faiss.index_cpu_to_all_gpus``) when ``IndexConfig.device`` allows it and FAISS is a
GPU build that sees one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rerankforge.core.extras import require
from rerankforge.retrieval.config import IndexConfig

logger = logging.getLogger(__name__)
ADD_CHUNK = 65536  # rows copied out of the memmap at a time
MIN_POINTS_PER_LIST = 39  # FAISS's k-means warns below 39 training points per centroid
GPU_HINT = ("pip install faiss-gpu-cu12 (CUDA 12) in place of faiss-cpu, or conda install -c pytorch -c nvidia "
            "faiss-gpu")


def _faiss():
    return require("faiss", "Dense retrieval (FAISS)")


def default_pq_m(dim: int) -> int:
    """The largest divisor of ``dim`` that is at most ``dim / 8`` (8 dimensions or more per sub-quantizer)."""
    return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)


def resolve_pq_m(config: IndexConfig, dim: int) -> int:
    """``config.pq_m`` checked against the embedding dimension, or its default when null.

    Raises:
        ValueError: ``pq_m`` does not divide ``dim`` (the message lists the valid choices).
    """
    if config.pq_m is None:
        return default_pq_m(dim)
    if dim % config.pq_m:
        divisors = [m for m in range(1, dim + 1) if dim % m == 0]
        raise ValueError(f"index.pq_m={config.pq_m} does not divide the embedding dimension {dim}: product "
                         f"quantization splits each vector into pq_m equal parts. Choose one of {divisors}, or "
                         f"null for {default_pq_m(dim)} (the largest divisor at most dimension / 8).")
    return config.pq_m


def effective_nlist(config: IndexConfig, n: int) -> int:
    """``config.nlist``, lowered so that each list has FAISS's minimum of training points from ``n`` vectors."""
    return max(1, min(config.nlist, n // MIN_POINTS_PER_LIST))


def training_rows(config: IndexConfig, n: int, nlist: int) -> np.ndarray:
    """Row ids of the training sample: ``train_size`` (default ``nlist * 256``, capped by ``n``) evenly spaced
    rows, so the sample is deterministic and spans the corpus whatever its order."""
    size = min(n, config.train_size if config.train_size is not None else nlist * 256)
    return np.linspace(0, n - 1, num=size, dtype=np.int64)


def factory_string(config: IndexConfig, n: int, dim: int) -> str:
    """The ``faiss.index_factory`` description of the index ``config`` builds over ``n`` vectors of ``dim``."""
    if config.type == "flat":
        return "Flat"
    if config.type == "hnsw":
        return f"HNSW{config.hnsw_m}"
    nlist = effective_nlist(config, n)
    if config.type == "ivf":
        return f"IVF{nlist},Flat"
    if config.type == "ivfpq":
        return f"IVF{nlist},PQ{resolve_pq_m(config, dim)}x{config.pq_nbits}"
    raise ValueError(f"index.type must be one of flat, ivf, ivfpq, hnsw, got {config.type!r}.")


def _check_training_size(config: IndexConfig, rows: int, nlist: int) -> None:
    need = max(nlist, 2 ** config.pq_nbits if config.type == "ivfpq" else 0)
    if rows < need:
        centroids = f"nlist={nlist}" + (f", 2**pq_nbits={2 ** config.pq_nbits}" if config.type == "ivfpq" else "")
        raise ValueError(
            f"index.type={config.type} needs at least {need} training vectors ({centroids} centroids to train), "
            f"but its sample has {rows} (index.train_size={config.train_size}, capped by the corpus size); raise "
            "index.train_size, lower index.nlist or index.pq_nbits, or use index.type=flat for a corpus this small.")


def build_index(embeddings: np.ndarray, config: IndexConfig):
    """A CPU FAISS index of ``embeddings[N, D]`` (inner product) of ``config.type``, trained and filled.

    Raises:
        ValueError: ``pq_m`` does not divide ``D``, or the training sample is smaller than the centroids to train.
    """
    faiss = _faiss()
    n, dim = embeddings.shape
    description = factory_string(config, n, dim)
    index = faiss.index_factory(dim, description, faiss.METRIC_INNER_PRODUCT)
    if config.type in ("ivf", "ivfpq"):
        nlist = effective_nlist(config, n)
        if nlist != config.nlist:
            logger.warning("index.nlist=%d is too large for %d vectors; using %d.", config.nlist, n, nlist)
        rows = training_rows(config, n, nlist)
        _check_training_size(config, len(rows), nlist)
        if config.type == "ivfpq":
            # it reorders codes for polysemous search (polysemous_ht), which is off, and is most of training's time
            index.do_polysemous_training = False
        logger.info("Training %s on %d of %d vectors.", description, len(rows), n)
        index.train(np.ascontiguousarray(embeddings[rows], dtype=np.float32))
    for start in range(0, n, ADD_CHUNK):
        index.add(np.ascontiguousarray(embeddings[start:start + ADD_CHUNK], dtype=np.float32))
    return index


def index_path(embeddings_file: Path, config: IndexConfig, n: int, dim: int) -> Path:
    """Where the index of ``config`` over the embeddings in ``embeddings_file`` is saved: its name holds every
    build parameter and ends in the type, e.g. ``corpus-<key>.nlist1024-pq48x8-t262144.ivfpq.faiss``."""
    params = []
    if config.type in ("ivf", "ivfpq"):
        nlist = effective_nlist(config, n)
        params.append(f"nlist{nlist}")
        if config.type == "ivfpq":
            params.append(f"pq{resolve_pq_m(config, dim)}x{config.pq_nbits}")
        params.append(f"t{len(training_rows(config, n, nlist))}")
    elif config.type == "hnsw":
        params.append(f"m{config.hnsw_m}")
    name = ".".join(part for part in ("-".join(params), config.type, "faiss") if part)
    return embeddings_file.with_suffix(f".{name}")


def read_index(path: Path, config: IndexConfig):
    """The index saved at ``path``, memory-mapped when ``config.mmap`` (see the module docstring)."""
    faiss = _faiss()
    if not config.mmap:
        return faiss.read_index(str(path))
    flag = faiss.IO_FLAG_MMAP if config.type in ("ivf", "ivfpq") else getattr(faiss, "IO_FLAG_MMAP_IFC", None)
    if flag is None:  # faiss < 1.9 maps only IVF lists
        logger.warning("This FAISS (%s) cannot memory-map %s indexes; reading %s into RAM.",
                       faiss.__version__, config.type, path)
        return faiss.read_index(str(path))
    return faiss.read_index(str(path), flag)


def set_search_parameters(index, config: IndexConfig) -> None:
    """``nprobe`` (IVF types) or ``efSearch`` (HNSW) from ``config``; neither is saved with the index."""
    if config.type in ("ivf", "ivfpq"):
        _faiss().extract_index_ivf(index).nprobe = config.nprobe
    elif config.type == "hnsw":
        index.hnsw.efSearch = config.ef_search


def to_device(index, config: IndexConfig):
    """``index`` moved to all GPUs when ``config.device`` is ``gpu``, or ``auto`` and FAISS sees a GPU; else
    itself (``auto`` keeps ``hnsw`` on the CPU: FAISS has no GPU HNSW).

    Raises:
        RuntimeError: ``device=gpu`` without a GPU build of FAISS, without a visible GPU, or for ``hnsw`` (FAISS
            has no GPU HNSW).
    """
    if config.device == "cpu":
        return index
    faiss = _faiss()
    gpu_build = hasattr(faiss, "StandardGpuResources")
    gpus = faiss.get_num_gpus() if gpu_build else 0
    if config.device == "gpu":
        if not gpu_build:
            raise RuntimeError(f"index.device=gpu, but the installed FAISS ({faiss.__version__}) is a CPU-only "
                               f"build. Install a GPU build: {GPU_HINT}; or set index.device=auto or cpu.")
        if gpus == 0:
            raise RuntimeError("index.device=gpu, but FAISS sees no GPU (faiss.get_num_gpus() == 0): check the "
                               "CUDA driver and CUDA_VISIBLE_DEVICES, or set index.device=auto or cpu.")
        if config.type == "hnsw":
            raise RuntimeError("index.device=gpu with index.type=hnsw: FAISS has no GPU HNSW; use index.type=flat, "
                               "ivf or ivfpq on the GPU, or index.device=auto or cpu.")
    if gpus == 0 or config.type == "hnsw":
        return index
    logger.info("Searching the %s index on %d GPU(s).", config.type, gpus)
    return faiss.index_cpu_to_all_gpus(index)


def load_or_build_index(embeddings: np.ndarray, embeddings_file: Path, config: IndexConfig):
    """The index of ``config`` over ``embeddings``, loaded from beside ``embeddings_file`` or built and saved
    there, with its search parameters set and moved to the GPUs per ``config.device``."""
    faiss = _faiss()
    path = index_path(embeddings_file, config, *embeddings.shape)
    if path.exists():
        index = read_index(path, config)
    else:
        index = build_index(embeddings, config)
        tmp = path.with_name(f".{path.name}.partial")
        faiss.write_index(index, str(tmp))
        tmp.replace(path)
        if config.mmap:  # let the built copy go: what stays open is the mapped file
            del index
            index = read_index(path, config)
    set_search_parameters(index, config)  # before the GPU copy, which takes them over
    return to_device(index, config)


def search(index, queries: np.ndarray, k: int, batch_size: int = 1024,
           show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores[Q, k], row_ids[Q, k])`` per query; missing hits have row id -1."""
    k = min(k, index.ntotal)
    scores, ids = [], []
    for start in tqdm(range(0, len(queries), batch_size), desc="Searching index", unit="batch",
                      disable=not show_progress):
        s, i = index.search(np.ascontiguousarray(queries[start:start + batch_size], dtype=np.float32), k)
        scores.append(s)
        ids.append(i)
    return np.concatenate(scores), np.concatenate(ids)

"""FAISS index over normalised embeddings (inner product = cosine): build, save, load, search."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rerankforge.data_prep.config import IndexConfig

logger = logging.getLogger(__name__)
ADD_CHUNK = 65536  # rows copied out of the memmap at a time


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("FAISS is needed for dense retrieval: pip install faiss-cpu (or faiss-gpu).") from exc
    return faiss


def build_index(embeddings: np.ndarray, config: IndexConfig):
    """A FAISS index of ``embeddings[N, D]``: flat (exact), IVF or HNSW, all with inner product."""
    faiss = _faiss()
    n, dim = embeddings.shape
    if config.type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif config.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = config.ef_search
    else:
        nlist = max(1, min(config.nlist, n // 39))  # FAISS wants >= 39 training points per list
        if nlist != config.nlist:
            logger.warning("index.nlist=%d is too large for %d vectors; using %d.", config.nlist, n, nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.linspace(0, n - 1, num=min(n, nlist * 256), dtype=np.int64)  # deterministic sample
        index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
        index.nprobe = config.nprobe
    for start in range(0, n, ADD_CHUNK):
        index.add(np.ascontiguousarray(embeddings[start:start + ADD_CHUNK], dtype=np.float32))
    return index


def index_path(embeddings_file: Path, config: IndexConfig) -> Path:
    return embeddings_file.with_suffix(f".{config.type}.faiss")


def load_or_build_index(embeddings: np.ndarray, embeddings_file: Path, config: IndexConfig):
    """Load the index saved beside ``embeddings_file``, or build and save it."""
    faiss = _faiss()
    path = index_path(embeddings_file, config)
    if path.exists():
        index = faiss.read_index(str(path))
    else:
        index = build_index(embeddings, config)
        tmp = path.with_name(f".{path.name}.partial")
        faiss.write_index(index, str(tmp))
        tmp.replace(path)
    if config.type == "ivf":
        index.nprobe = config.nprobe
    elif config.type == "hnsw":
        index.hnsw.efSearch = config.ef_search
    return index


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

"""Encode texts with a sentence-transformers bi-encoder into an on-disk, memory-mapped embedding cache.

Cache files are keyed by model fingerprint + settings (precision, backend, int8 calibration) + the texts' hash,
so ``eval`` reuses what ``mine`` computed. Rows are written straight into a ``.npy`` memmap: the full matrix is
never held twice. ``encoder.backend=openvino`` runs the transformer on OpenVINO (``retrieval/openvino_encoder.py``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from rerankforge.core import distributed
from rerankforge.core.io import hash_strings
from rerankforge.models.loading import bf16_is_fast
from rerankforge.models.resolve import ResolvedModel, model_fingerprint, resolve_model
from rerankforge.retrieval.config import EncoderConfig
from rerankforge.retrieval.corpus_store import take_texts

# Batches per encode() call. Texts are globally sorted by length first, so a chunk only sets how often the
# progress bar moves and the memmap is written.
BATCHES_PER_CHUNK = 16


@dataclass
class Encoder:
    """A loaded bi-encoder plus what is needed to key its cached outputs."""

    model: Any  # sentence_transformers.SentenceTransformer
    resolved: ResolvedModel
    config: EncoderConfig
    fingerprint: str
    bf16: bool = False  # encode under bfloat16 autocast
    openvino: Any = None  # retrieval.openvino_encoder.OpenVINOTransformer when config.backend == "openvino"

    def calibrate(self, texts: list[str], prompt: Optional[str], cache_dir: Path) -> None:
        """Calibrate an ``encoder.quantize=int8`` model on a seeded sample of ``texts`` (corpus texts), once.

        A no-op for other encoders and once calibrated. The sample's hash joins ``fingerprint``, so embeddings
        from models calibrated on different texts never share a cache entry.
        """
        if self.openvino is None or not self.openvino.needs_calibration:
            return
        # rerankforge.retrieval.openvino_encoder imports torch, which this module does not otherwise load
        from rerankforge.retrieval.openvino_encoder import calibrate_int8

        sample_hash = calibrate_int8(self.model, self.openvino, texts, prompt, self.fingerprint,
                                     Path(cache_dir) / "openvino")
        self.fingerprint = hash_strings([self.fingerprint, "int8-calibration", sample_hash])

    def query_precision(self):
        """The context query encoding runs in: ``precision()``, except that a bfloat16 OpenVINO model runs queries
        in float32 (they are few, and it halves the bfloat16 error of every similarity)."""
        return self.openvino.float32() if self.openvino is not None else self.precision()

    def precision(self):
        """The context every corpus ``encode`` call runs in: bfloat16 autocast, or nothing."""
        # torch is slow to import; only this path needs it
        import torch

        return torch.autocast(self.model.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    @property
    def dimension(self) -> int:
        return self.model.get_embedding_dimension()


def load_encoder(config: EncoderConfig) -> Encoder:
    """Load ``config.name_or_path`` (resolved local → HF cache → offline bundle → Hub) on ``config.backend``.

    With ``backend=openvino`` the transformer is converted at load (float32), or quantized to int8 at the first
    corpus ``cached_embeddings`` call, which calibrates it on that corpus (``Encoder.calibrate``).

    Raises:
        ImportError: backend=openvino without openvino (or nncf for int8); the message has the pip command.
    """
    # sentence-transformers imports torch (slow); only this path needs it
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(config.name_or_path)
    on_openvino = config.backend == "openvino"
    model = SentenceTransformer(resolved.path, device="cpu" if on_openvino else config.device)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    bf16 = config.dtype == "bfloat16" or (config.dtype == "auto" and bf16_is_fast(model.device))
    parts = [model_fingerprint(resolved), str(model.max_seq_length)] + (["bf16"] if bf16 else [])
    stand_in = None
    if on_openvino:  # torch keys keep their old form, so existing caches stay valid
        # rerankforge.retrieval.openvino_encoder imports torch, which this module does not otherwise load
        from rerankforge.retrieval.openvino_encoder import to_openvino

        stand_in = to_openvino(model, config.quantize, bf16)
        # a model cut into parts of different precisions computes other embeddings than one in bfloat16 throughout
        parts += ["openvino", config.quantize or "float32"] + ([stand_in.precisions] if "+" in stand_in.precisions
                                                               else [])
    # on OpenVINO bfloat16 is the compiled model's precision, not torch autocast
    return Encoder(model, resolved, config, hash_strings(parts), bf16 and not on_openvino, stand_in)


@contextlib.contextmanager
def _pool(encoder: Encoder) -> Iterator[Optional[dict]]:
    devices = list(encoder.config.multi_process_devices)
    if not devices:
        yield None
        return
    pool = encoder.model.start_multi_process_pool(target_devices=devices)
    try:
        yield pool
    finally:
        encoder.model.stop_multi_process_pool(pool)


def encode_to_file(encoder: Encoder, texts: Sequence[str], path: Path, prompt: Optional[str], desc: str,
                   queries: bool = False) -> None:
    """Encode ``texts`` (L2-normalised float32) into the ``.npy`` file ``path``, row i = texts[i].

    Texts are encoded longest first, as sentence-transformers does, so batches pad little; rows are written
    at their original positions. The file appears only once complete. Under ``accelerate launch`` every process
    encodes a contiguous share of the same chunks into one memmap, so each row comes from the same batch as in
    one process, and the main process publishes the file.
    """
    procs = distributed.state()
    tmp = distributed.scratch_path(path)
    if procs.is_main_process:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), encoder.dimension)).flush()
    procs.wait_for_everyone()
    out = np.load(tmp, mmap_mode="r+")
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    order = np.argsort(-lengths, kind="stable")
    step = encoder.config.batch_size * BATCHES_PER_CHUNK
    with distributed.share_of([order[s:s + step] for s in range(0, len(order), step)]) as chunks, \
            _pool(encoder) as pool, encoder.query_precision() if queries else encoder.precision(), \
            tqdm(total=sum(map(len, chunks)), desc=desc, unit="text", disable=not procs.is_local_main_process) as bar:
        for rows in chunks:
            out[rows] = encoder.model.encode(take_texts(texts, rows), prompt=prompt, batch_size=encoder.config.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False, pool=pool)
            bar.update(len(rows))
    out.flush()
    del out
    procs.wait_for_everyone()
    if procs.is_main_process:
        os.replace(tmp, path)
    procs.wait_for_everyone()


def cached_embeddings(encoder: Encoder, texts: Sequence[str], kind: str, cache_dir: Path,
                      prompt: Optional[str] = None) -> tuple[np.ndarray, Path]:
    """Embeddings of ``texts`` as a read-only memmap, computed once per (model, settings, texts).

    Returns the array and its cache file (the FAISS index is stored beside it). ``kind="corpus"`` first
    calibrates an int8 OpenVINO encoder on ``texts`` (``Encoder.calibrate``), even when the file is cached.
    """
    if kind == "corpus":
        with distributed.main_first():  # the main process calibrates and saves, the others load
            encoder.calibrate(texts, prompt, cache_dir)
    key = hash_strings([encoder.fingerprint, prompt or "", hash_strings(texts)])[:20]
    path = cache_dir / "embeddings" / f"{kind}-{key}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_to_file(encoder, texts, path, prompt, desc=f"Encoding {kind}", queries=kind != "corpus")
    return np.load(path, mmap_mode="r"), path

"""Score and rerank passages with a trained checkpoint: ``Reranker("runs/train/x/final").rerank(query, docs)``.

Results follow the Cohere rerank API: ``[{"index": i, "relevance_score": s}]``, best first, where
``relevance_score`` is the sigmoid of the logit (the logit itself with ``raw=True``), as in
sentence-transformers' ``CrossEncoder.predict``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from rerankforge.models.loading import load_seq_cls, load_tokenizer


class Reranker:
    """A one-logit cross-encoder from a local folder, a Hub id, or a LoRA adapter folder.

    Args:
        max_length: tokens per (query, passage) pair; only the passage is truncated. Default: the tokenizer's
            ``model_max_length`` when it is sane, else 512.
        device: e.g. "cpu", "cuda:0"; default CUDA when available.
        dtype: e.g. ``torch.bfloat16`` or "bfloat16"; default float32.
        quantize: "int8" applies PyTorch dynamic int8 quantization to the Linear layers (CPU only): about 2x
            faster on CPUs with VNNI, at a small cost in score precision (see bench/rerank.py).
    Raises:
        ValueError: ``quantize`` is not None/"int8", or int8 is asked for on a non-CPU device.
    """

    def __init__(self, model_name_or_path: str, max_length: Optional[int] = None, device: Optional[str] = None,
                 dtype: Optional[torch.dtype | str] = None, batch_size: int = 32, gguf_file: Optional[str] = None,
                 quantize: Optional[str] = None):
        self.tokenizer = load_tokenizer(model_name_or_path, gguf_file)
        model = load_seq_cls(model_name_or_path, gguf_file, tokenizer=self.tokenizer)
        if hasattr(model, "merge_and_unload"):  # a LoRA adapter: merge once, score at full speed
            model = model.merge_and_unload()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.model = model.to(device=self.device, dtype=dtype or torch.float32).eval()
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r}.")
        if quantize == "int8":
            if self.device.type != "cpu":
                raise ValueError(f"quantize='int8' (dynamic quantization) runs on CPU only; device is {self.device}.")
            self.model = torch.ao.quantization.quantize_dynamic(self.model.float(), {torch.nn.Linear}, dtype=torch.qint8)
        limit = getattr(self.tokenizer, "model_max_length", None) or 512
        self.max_length = max_length or (limit if limit <= 8192 else 512)
        self.batch_size = batch_size

    def score(self, query: str, docs: Sequence[str], raw: bool = False) -> list[float]:
        """One score per doc, in the order given (sigmoid of the logit; the logit with ``raw=True``)."""
        return self.score_pairs([(query, d) for d in docs], raw=raw)

    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[tuple[str, str]], raw: bool = False) -> list[float]:
        """Scores of ``(query, passage)`` pairs from any queries, in order; batches are formed longest passage
        first so they pad little, and only the passage is truncated."""
        if not pairs:
            return []
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][1]))
        scores = [0.0] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = self.tokenizer([pairs[i][0] for i in rows], [pairs[i][1] for i in rows], truncation="only_second",
                                   max_length=self.max_length, padding=True, return_tensors="pt").to(self.device)
            logits = self.model(**batch).logits.view(-1).float()
            for i, value in zip(rows, (logits if raw else torch.sigmoid(logits)).tolist()):
                scores[i] = value
        return scores

    def rerank(self, query: str, docs: Sequence[str], top_n: Optional[int] = None,
               raw: bool = False) -> list[dict]:
        """``[{"index", "relevance_score"}]`` for the ``top_n`` best docs (all by default), best first."""
        scores = self.score(query, docs, raw=raw)
        ranked = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
        return [{"index": i, "relevance_score": scores[i]} for i in ranked[: top_n or len(docs)]]

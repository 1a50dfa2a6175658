"""Score and rerank passages with a trained checkpoint: ``Reranker("runs/train/x/final").rerank(query, docs)``;
``predict`` and ``rank`` take and give what sentence-transformers' ``CrossEncoder`` does.

Results follow the Cohere rerank API: ``[{"index": i, "relevance_score": s}]``, best first, where
``relevance_score`` is P(relevant) when the checkpoint has a ``calibration.json`` (fitted on the dev split at the
end of training, ``models/calibration.py``), else the sigmoid of the logit as in sentence-transformers'
``CrossEncoder.predict``; ``raw=True`` gives the logit itself.

With ``first_stage_scores`` (the retriever's score of each doc), ``rerank`` fuses the reranker with the first stage
by the weight training fitted on the dev split (``fusion.json`` beside the checkpoint), exactly as eval's fused run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Callable, Optional, Sequence

import torch
from tqdm.auto import tqdm

from rerankforge.models import openvino_backend
from rerankforge.models.calibration import Calibration, read_calibration, sigmoid
from rerankforge.models.fusion import FUSION_FILE, fuse_request, read_fusion
from rerankforge.models.loading import bf16_is_fast, load_seq_cls, load_tokenizer, usable_positions
from rerankforge.models.openvino_backend import compile_ov, exported_model, load_calibration_pairs
from rerankforge.models.pairs import PairLimits, encode_pairs, pad_inputs

logger = logging.getLogger(__name__)


class Reranker:
    """A one-logit cross-encoder from a local folder, a Hub id, or a LoRA adapter folder.

    Args:
        max_length: tokens per (query, passage) pair. Default: the tokenizer's ``model_max_length`` (what
            training saved) when it is sane, else 512; never more than the model can read (a longer one given
            is cut to that, with a warning). No length of query
            or passage fails (``models/pairs.py``): the query is cut to ``max_query_length`` tokens, then the
            passage to the rest.
        max_query_length: tokens kept of a long query (default 64, as in training).
        max_passage_tokens: None (default): a passage longer than a pair leaves is cut, as ``CrossEncoder`` cuts
            it. A number: it is read, up to that many tokens, as overlapping windows of ``max_length`` that it
            scores as its best one (MaxP, as the Cohere route reads long documents).
        device: e.g. "cpu", "cuda:0"; default CUDA when available.
        dtype: ``torch.float32`` (default), ``torch.bfloat16`` (on CPU: bfloat16 autocast over float32 weights,
            which is faster there than bfloat16 weights), or "auto": bfloat16 where ``bf16_is_fast`` says it
            pays off (CUDA, CPUs with AMX or AVX512-BF16), else float32. Strings name torch dtypes.
        quantize: "int8": with the torch backend, PyTorch dynamic int8 quantization of the Linear layers; with
            the openvino backend, static int8 calibrated on ``calibration``. CPU only; bench/rerank.py measures the
            speed and the cost in nDCG@10 of each.
        backend: "torch" (default) or "openvino" (CPU; ``pip install 'rerankforge[openvino]'``). A folder written by
            ``rerankforge export`` loads its saved OpenVINO model for ``quantize`` as it is: no conversion and no
            int8 calibration at load.
        calibration: for ``backend="openvino", quantize="int8"`` on a folder that was not exported: a few hundred
            in-domain (query, passage) pairs, or a path to them (records with query + passage, or a mined training
            set such as runs/mine/x).
        calibrated: use the checkpoint's ``calibration.json`` for probabilities (default); False: plain sigmoid.
    Raises:
        ValueError: an unknown ``quantize`` or ``backend``, or int8/openvino asked for on a non-CPU device.
        ImportError: backend="openvino" without the openvino (and, for int8, nncf) package.
    """

    def __init__(self, model_name_or_path: str, max_length: Optional[int] = None, device: Optional[str] = None,
                 dtype: Optional[torch.dtype | str] = None, batch_size: int = 32, gguf_file: Optional[str] = None,
                 quantize: Optional[str] = None, backend: str = "torch",
                 calibration: Optional[Sequence[tuple[str, str]] | str] = None, max_query_length: int = 64,
                 calibrated: bool = True, max_passage_tokens: Optional[int] = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if quantize not in (None, "int8") or backend not in ("torch", "openvino"):
            raise ValueError(f"quantize must be None or 'int8' and backend 'torch' or 'openvino'; got quantize="
                             f"{quantize!r}, backend={backend!r}.")
        if (quantize or backend == "openvino") and self.device.type != "cpu":
            raise ValueError(f"quantize={quantize!r}, backend={backend!r} run on CPU only; device is {self.device}.")
        self.tokenizer = load_tokenizer(model_name_or_path, gguf_file)
        limit = getattr(self.tokenizer, "model_max_length", None) or 512
        self.max_length = max_length or (limit if limit <= 8192 else 512)
        self.limits = PairLimits(max_length=self.max_length, max_query_length=max_query_length,
                                 max_passage_tokens=max_passage_tokens)
        self.batch_size = batch_size
        self.calibration: Optional[Calibration] = read_calibration(model_name_or_path) if calibrated else None
        self.source = str(model_name_or_path)
        self.fusion: Optional[dict] = read_fusion(model_name_or_path)
        self.exported = None
        if backend == "openvino":
            self.exported = exported_model(model_name_or_path, quantize)
        if self.exported is not None:  # saved by `rerankforge export`: no torch weights needed
            self.model, self.dtype = None, torch.float32
            self._forward = compile_ov(self.exported)
            return
        self._load_torch(model_name_or_path, gguf_file, dtype, quantize, backend, calibration,
                         warn_length=max_length is not None)

    def _load_torch(self, model_name_or_path: str, gguf_file: Optional[str], dtype, quantize: Optional[str],
                    backend: str, calibration, warn_length: bool) -> None:
        model = load_seq_cls(model_name_or_path, gguf_file, tokenizer=self.tokenizer)
        if hasattr(model, "merge_and_unload"):  # a LoRA adapter: merge once, score at full speed
            model = model.merge_and_unload()
        positions = usable_positions(model.config)
        if positions and self.max_length > positions:  # past them the model fails at its first long pair
            if warn_length:  # a length the caller asked for; a defaulted one is capped silently
                logger.warning("max_length=%d is more than %s can read (%d positions): reading %d tokens per pair. "
                               "Pass max_length<=%d or leave it unset.", self.max_length, model_name_or_path,
                               positions, positions, positions)
            self.max_length = positions
            self.limits = dataclasses.replace(self.limits, max_length=positions)
        if dtype == "auto":
            dtype = torch.bfloat16 if bf16_is_fast(self.device) and backend == "torch" and not quantize else None
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.dtype = dtype or torch.float32
        cpu_autocast = self.dtype == torch.bfloat16 and self.device.type == "cpu"
        self.model = model.to(device=self.device, dtype=torch.float32 if cpu_autocast else self.dtype).eval()
        if quantize == "int8" and backend == "torch":
            self.model = torch.ao.quantization.quantize_dynamic(self.model.float(), {torch.nn.Linear}, dtype=torch.qint8)
        self._forward = lambda batch: self.model(**batch).logits.view(-1).float()
        if cpu_autocast and backend == "torch" and not quantize:
            self._forward = torch.autocast("cpu", dtype=torch.bfloat16)(self._forward)
        if backend == "openvino":
            if isinstance(calibration, str) and quantize:
                calibration = load_calibration_pairs(calibration)
            self._forward = openvino_backend.compile_openvino(self.model.float(), self._encode, quantize, calibration,
                                                              self.batch_size)

    def _encode(self, pairs: Sequence[tuple[str, str]]) -> dict:
        """One padded model input per pair, passages cut to fit (OpenVINO's example and calibration inputs)."""
        limits = dataclasses.replace(self.limits, max_passage_tokens=None, max_windows=None)
        inputs, _ = encode_pairs(self.tokenizer, pairs, limits)
        return {k: v.to(self.device) for k, v in pad_inputs(self.tokenizer, inputs).items()}

    def probability(self, logit: float) -> float:
        """P(relevant) of a logit under the checkpoint's calibration; the plain sigmoid when it has none."""
        return self.calibration.probability(logit) if self.calibration else sigmoid(logit)

    def score(self, query: str, docs: Sequence[str], raw: bool = False,
              limits: Optional[PairLimits] = None) -> list[float]:
        """One score per doc, in the order given (``probability`` of the logit; the logit with ``raw=True``)."""
        return self.score_pairs([(query, d) for d in docs], raw=raw, limits=limits)

    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[tuple[str, str]], raw: bool = False,
                    limits: Optional[PairLimits] = None, progress: bool = False) -> list[float]:
        """Scores of ``(query, passage)`` pairs from any queries, in order.

        ``limits`` (default: truncate to ``max_length``) may split long passages into windows
        (``PairLimits.max_passage_tokens``); a passage then scores as its best window (MaxP). Batches are formed
        longest input first so they pad little. ``progress``: a progress bar over the batches.
        """
        if not pairs:
            return []
        inputs, owners = encode_pairs(self.tokenizer, pairs, limits or self.limits)
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]["input_ids"]))
        best = [-math.inf] * len(pairs)
        batches = range(0, len(order), self.batch_size)
        for start in tqdm(batches, desc="Scoring pairs", unit="batch", disable=not progress):
            rows = order[start:start + self.batch_size]
            batch = {k: v.to(self.device) for k, v in pad_inputs(self.tokenizer, [inputs[i] for i in rows]).items()}
            for i, logit in zip(rows, self._forward(batch).tolist()):
                best[owners[i]] = max(best[owners[i]], logit)
        return best if raw else [self.probability(x) for x in best]

    def predict(self, inputs: Sequence[tuple[str, str]] | tuple[str, str], batch_size: Optional[int] = None,
                show_progress_bar: Optional[bool] = None, activation_fn: Optional[Callable] = None,
                apply_softmax: bool = False, convert_to_numpy: bool = True, convert_to_tensor: bool = False):
        """sentence-transformers' ``CrossEncoder.predict``: one score per ``(query, passage)`` pair, in order; a
        single pair gives one score. As ``CrossEncoder`` does for a one-logit model, the score is the sigmoid of the
        logit (``activation_fn`` replaces it: ``torch.nn.Identity()`` for logits), not the calibrated probability
        ``score`` gives. ``apply_softmax`` has no effect on one logit. A numpy array by default; a tensor with
        ``convert_to_tensor``, a list of floats with ``convert_to_numpy=False``."""
        single = isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(x, str) for x in inputs)
        pairs = [inputs] if single else list(inputs)
        batch, self.batch_size = self.batch_size, batch_size or self.batch_size
        try:
            logits = torch.tensor(self.score_pairs(pairs, raw=True, progress=bool(show_progress_bar)))
        finally:
            self.batch_size = batch
        scores = (activation_fn or torch.sigmoid)(logits).float()
        if single:
            scores = scores[0]
        if convert_to_tensor:
            return scores
        return scores.numpy() if convert_to_numpy else scores.tolist()

    def rank(self, query: str, documents: Sequence[str], top_k: Optional[int] = None, return_documents: bool = False,
             batch_size: Optional[int] = None, show_progress_bar: Optional[bool] = None,
             activation_fn: Optional[Callable] = None) -> list[dict]:
        """sentence-transformers' ``CrossEncoder.rank``: ``[{"corpus_id", "score"(, "text")}]`` for the ``top_k``
        best documents (all by default), best first; scores as ``predict`` gives them, ties in the order given."""
        scores = self.predict([(query, d) for d in documents], batch_size, show_progress_bar, activation_fn,
                              convert_to_numpy=False)
        order = sorted(range(len(documents)), key=lambda i: -scores[i])[:top_k]
        return [{"corpus_id": i, "score": scores[i], **({"text": documents[i]} if return_documents else {})}
                for i in order]

    def rerank(self, query: str, docs: Sequence[str], top_n: Optional[int] = None, raw: bool = False,
               limits: Optional[PairLimits] = None,
               first_stage_scores: Optional[Sequence[float]] = None) -> list[dict]:
        """``[{"index", "relevance_score"}]`` for the ``top_n`` best docs (all by default), best first.

        ``first_stage_scores``: one score per doc from the retriever that found them (any scale: cosine, BM25, RRF).
        The order is then the fused one and ``relevance_score`` the fused score (not a probability); ``raw`` does
        not apply. Ties keep the first stage's order.

        Raises:
            ValueError: ``first_stage_scores`` without a ``fusion.json`` beside the checkpoint, or not one finite
                score per doc.
        """
        if first_stage_scores is None:
            scores = self.score(query, docs, raw=raw, limits=limits)
            ranked = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
        else:
            if self.fusion is None:
                raise ValueError(f"first_stage_scores were given, but {self.source} has no {FUSION_FILE}: training "
                                 "writes one when its data has a dev split. Call rerank without first_stage_scores "
                                 "for the reranker alone.")
            logits = self.score(query, docs, raw=True, limits=limits)
            scores, ranked = fuse_request(logits, list(first_stage_scores), self.fusion)
        return [{"index": i, "relevance_score": scores[i]} for i in ranked[: top_n or len(docs)]]

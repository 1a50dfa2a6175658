"""The bi-encoder's transformer on OpenVINO (``encoder.backend=openvino``): float32, bfloat16, or static int8.

Only the Hugging Face model inside the SentenceTransformer's ``Transformer`` module is replaced, as
sentence-transformers' own ``backend="openvino"`` does (its optimum-intel dependency pins older torch and
transformers than this project uses, so the model is converted here with ``openvino.convert_model``).
Tokenisation, prompts, pooling and normalisation stay the SentenceTransformer's own modules, so float32
embeddings match torch's. Int8 is NNCF post-training quantization calibrated on a seeded sample of the corpus
texts being encoded; the quantized model is saved under the cache folder and reused on the next run. In
bfloat16 the last layer's attention block runs in float32 (``openvino_split.bfloat16_parts``).
"""

from __future__ import annotations

import contextlib
import inspect
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from rerankforge.core.io import hash_strings
from rerankforge.models.openvino_backend import (
    compile_config,
    exported_model,
    int8_has_vnni,
    int8_parameters,
    require_openvino,
    save_openvino,
)
from rerankforge.retrieval.openvino_split import HIDDEN, bfloat16_parts, layer_stack

CALIBRATION_TEXTS = 300  # corpus texts NNCF sees; a few hundred fit the int8 ranges
CALIBRATION_SEED = 0
CALIBRATION_BATCH = 16  # NNCF runs the float model with every activation as an output: small batches bound memory
# Feed-forward down-projections (BERT-family ``layer.N.output.dense``, DistilBERT ``ffn.lin2``) stay float32:
# their post-GELU inputs have outliers that int8 ranges clip, which moves the top-10 away from float32's.
FLOAT_LAYERS = [r".*layer\.\d+\.output\.dense/.*", r".*\.ffn\.lin2/.*"]


class _LastHiddenState(torch.nn.Module):
    """The Hugging Face encoder with only ``last_hidden_state`` as output (the graph OpenVINO converts)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True,
                          **extra).last_hidden_state


class OpenVINOTransformer(torch.nn.Module):
    """Stands in for the Hugging Face model inside a sentence-transformers ``Transformer`` module.

    Takes the tokenizer's tensors and returns ``{"last_hidden_state": FloatTensor[B, L, H]}`` computed by a
    compiled OpenVINO model on the CPU. ``compiled`` is None until an int8 model has been calibrated; calling
    it then raises RuntimeError rather than silently running unquantized.
    """

    def __init__(self, config, input_names: Sequence[str], float_model=None, bf16: bool = False):
        super().__init__()
        self.config, self.bf16 = config, bf16
        self.input_names = list(input_names)
        self.compiled = self.source = self._float32 = None
        self.precisions = ""  # each compiled part's precision, e.g. "bf16+f32+bf16"
        self._thread = threading.local()  # the model this thread's calls run on inside ``float32()``
        self.float_model = float_model  # the converted float32 ``openvino.Model``, which int8 calibration quantizes

    def compile(self, source, stack: Optional[tuple[str, int]] = None) -> None:
        """Compile ``source`` (an ``openvino.Model`` or a saved ``.xml`` path) in this stand-in's precision.

        In bfloat16, given the model's ``layer_stack`` (``("", 0)`` when it has none), the last layer's attention
        block runs in float32 (``bfloat16_parts``); ``precisions`` lists each part's, e.g. ``"bf16+f32+bf16"``.
        Batches run split over the CPU's throughput streams (``_Streams``).
        """
        # optional extra [openvino]
        import openvino as ov

        self.source, self._float32 = source, None
        parts, in_bf16 = bfloat16_parts(source, stack) if self.bf16 and stack else ([source], [self.bf16])
        core = ov.Core()
        self.compiled = _Streams([core.compile_model(part, "CPU", compile_config(bf16, throughput=True))
                                  for part, bf16 in zip(parts, in_bf16)])
        self.precisions = "+".join("bf16" if bf16 else "f32" for bf16 in in_bf16)

    @contextlib.contextmanager
    def float32(self) -> Iterator[None]:
        """Run this thread's calls in float32 precision; a no-op unless the model runs in bfloat16. Queries are
        few, and encoding them in float32 halves the bfloat16 error of every query-passage similarity."""
        if not self.bf16 or self.compiled is None:
            yield
            return
        if self._float32 is None:
            # optional extra [openvino]
            import openvino as ov

            self._float32 = ov.Core().compile_model(self.source, "CPU", compile_config(False))
        self._thread.compiled = self._float32
        try:
            yield
        finally:
            self._thread.compiled = None

    @property
    def needs_calibration(self) -> bool:
        return self.compiled is None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **_ignored) -> dict:
        if self.compiled is None:
            raise RuntimeError("encoder.quantize=int8 calibrates on the corpus texts, and no corpus has been "
                               "encoded yet: encode the corpus first (cached_embeddings(..., kind='corpus')).")
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        compiled = getattr(self._thread, "compiled", None) or self.compiled
        outputs = compiled({name: given[name].numpy() for name in self.input_names})
        return {"last_hidden_state": torch.from_numpy(outputs[0])}


class _Streams:
    """Compiled models run one after the other (one model, or the parts ``bfloat16_parts`` cut), called like one
    compiled model: inputs by name, outputs by index.

    Each batch is cut into one contiguous slice per throughput stream and the slices run in parallel threads
    (OpenVINO releases the GIL): on 2 cores, 2 streams of 1 thread encode ~13% faster than 1 stream of 2, with
    the same rows. A lock keeps concurrent callers off the shared infer requests.
    """

    def __init__(self, chain: list):
        self.chain = chain
        streams = max(1, int(chain[0].get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests = [[model.create_infer_request() for model in chain] for _ in range(streams)]
        self.input_names = [[port.get_any_name() for port in model.inputs] for model in chain]
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(streams, thread_name_prefix="openvino-stream") if streams > 1 else None

    def _run(self, requests: list, inputs: dict):
        hidden = None
        for request, names in zip(requests, self.input_names):
            given = inputs if hidden is None else {**inputs, HIDDEN: hidden}
            hidden = request.infer({name: given[name] for name in names})[0]
        return hidden.copy()  # the request's output buffer is reused by its next call

    def __call__(self, inputs: dict) -> list:
        rows = len(next(iter(inputs.values())))
        bounds = np.linspace(0, rows, max(1, min(rows, len(self.requests))) + 1).astype(int)
        slices = [{name: value[a:b] for name, value in inputs.items()} for a, b in zip(bounds, bounds[1:])]
        with self.lock:
            if len(slices) == 1:
                return [self._run(self.requests[0], slices[0])]
            return [np.concatenate(list(self.pool.map(self._run, self.requests, slices)))]


def _transformer_module(st):
    """The SentenceTransformer's first module when it is a text ``Transformer`` producing token embeddings."""
    # sentence-transformers imports torch (slow); only this path needs it
    from sentence_transformers.base.modules.transformer import Transformer

    module = st[0]
    if not isinstance(module, Transformer) or getattr(module, "module_output_name", None) != "token_embeddings" \
            or not isinstance(module.model, torch.nn.Module):
        raise ValueError(f"encoder.backend=openvino converts a bi-encoder whose first module is a Transformer "
                         f"giving token embeddings (then Pooling, Normalize...); this model starts with "
                         f"{type(module).__name__}. Use encoder.backend=torch for it.")
    return module


def _features(st, texts: Sequence[str], prompt: Optional[str], names: Sequence[str]) -> dict:
    features = st.preprocess(list(texts), prompt=prompt or None)
    return {name: features[name] for name in names}


def to_openvino(st, quantize: Optional[str], bf16: bool = False) -> OpenVINOTransformer:
    """Convert ``st``'s transformer to OpenVINO in place; returns the stand-in (compiled unless int8 still needs
    ``calibrate_int8``), running in bfloat16 precision with ``bf16``.

    Raises:
        ImportError: openvino (or nncf for int8) is missing; the message has the pip command.
        ValueError: the model is not a Transformer-first bi-encoder.
    """
    ov, _ = require_openvino(quantize)
    module = _transformer_module(st)
    hf_model = module.model.eval()
    accepted = set(inspect.signature(_LastHiddenState.forward).parameters)
    names = [n for n in st.preprocess(["a passage"]) if n in accepted]
    # share_weights=False copies the weights: the torch model is dropped below, the OpenVINO model stays
    with torch.inference_mode():
        ov_model = ov.convert_model(_LastHiddenState(hf_model), share_weights=False,
                                    example_input=_features(st, ["a passage"], None, names))
    stand_in = OpenVINOTransformer(hf_model.config, names, float_model=ov_model, bf16=bf16)
    if quantize is None:
        stand_in.compile(ov_model, layer_stack(hf_model) or ("", 0))
        stand_in.float_model = None
    module.model = stand_in
    return stand_in


def calibration_sample(texts: Sequence[str], size: int = CALIBRATION_TEXTS) -> list[str]:
    """A seeded sample of ``size`` texts (all when fewer), longest first so calibration batches pad little."""
    picked = random.Random(CALIBRATION_SEED).sample(range(len(texts)), min(size, len(texts)))
    return sorted((texts[i] for i in picked), key=lambda t: (-len(t), t))


def calibrate_int8(st, stand_in: OpenVINOTransformer, texts: Sequence[str], prompt: Optional[str],
                   model_key: str, cache_folder: Path) -> str:
    """Quantize ``stand_in``'s model to static int8 on a sample of ``texts``, compile it, return the sample's hash.

    ``model_key`` identifies the float model and its settings; the quantized model is saved under
    ``cache_folder/<hash of model_key and the sample>`` and loaded from there when the same pair comes again.
    """
    sample = calibration_sample(texts)
    sample_hash = hash_strings([prompt or ""] + sample)
    _, nncf = require_openvino("int8")
    # a model made without VNNI has 7-bit weights (int8_parameters): another file, so caches stay apart
    folder = Path(cache_folder) / hash_strings([model_key, sample_hash] + ([] if int8_has_vnni() else ["7-bit"]))[:20]
    saved = exported_model(folder, "int8")
    if saved is None:
        batches = [_features(st, sample[i:i + CALIBRATION_BATCH], prompt, stand_in.input_names)
                   for i in range(0, len(sample), CALIBRATION_BATCH)]
        dataset = nncf.Dataset(batches, lambda batch: {k: v.numpy() for k, v in batch.items()})
        # bias correction is one more pass over the sample and did not change the embeddings' agreement
        quantized = nncf.quantize(stand_in.float_model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(batches),
                                  ignored_scope=nncf.IgnoredScope(patterns=FLOAT_LAYERS, validate=False),
                                  advanced_parameters=int8_parameters(nncf, disable_bias_correction=True))
        saved = save_openvino(quantized, folder, "int8")
    stand_in.compile(str(saved))
    stand_in.float_model = None
    return sample_hash

"""Cutting the converted bi-encoder into parts of different precisions: the parts chained give the whole model."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rerankforge.retrieval.config import EncoderConfig
from rerankforge.retrieval.encode import load_encoder

ov = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def converted(tiny_encoder):
    """The tiny bi-encoder on OpenVINO float32 and a tokenized batch of 9 texts for its graph."""
    encoder = load_encoder(EncoderConfig(name_or_path=tiny_encoder, backend="openvino"))
    features = encoder.model.preprocess([f"passage {i} about cells and proteins" * (i + 1) for i in range(9)])
    return encoder.openvino.source, {name: features[name].numpy() for name in encoder.openvino.input_names}


def test_layer_stack_finds_the_transformer_layers(tiny_encoder):
    import torch
    from transformers import AutoModel

    from rerankforge.retrieval.openvino_split import layer_stack

    assert layer_stack(AutoModel.from_pretrained(tiny_encoder)) == ("encoder.layer", 2)
    assert layer_stack(torch.nn.Linear(2, 2)) is None


def test_bfloat16_parts_chain_to_the_whole_model_over_any_number_of_streams(converted):
    from rerankforge.retrieval.openvino_encoder import _Streams, compile_config
    from rerankforge.retrieval.openvino_split import HIDDEN, bfloat16_parts

    source, inputs = converted
    parts, in_bf16 = bfloat16_parts(source, ("encoder.layer", 2))
    assert in_bf16 == [True, False, True]  # the last layer's attention block in float32
    assert all(HIDDEN in [port.get_any_name() for port in part.inputs] for part in parts[1:])
    core = ov.Core()
    whole = core.compile_model(source, "CPU", compile_config(False))(inputs)[0]
    for throughput in (False, True):  # one stream, or one slice of the batch per stream
        streams = _Streams([core.compile_model(part, "CPU", compile_config(False, throughput)) for part in parts])
        assert (len(streams.requests) > 1) == (throughput and (os.cpu_count() or 1) > 1)
        np.testing.assert_allclose(streams(inputs)[0], whole, atol=1e-5)
        np.testing.assert_allclose(streams({k: v[:1] for k, v in inputs.items()})[0], whole[:1], atol=1e-5)


def test_a_cut_that_a_residual_branch_crosses_is_refused(converted):
    from rerankforge.retrieval.openvino_split import split_at

    source, _ = converted
    assert len(split_at(source, [".encoder.layer.0."], [".encoder.layer.0."])) == 2
    # before the residual add, the rest would recompute layer 0 for the skip connection
    assert split_at(source, [".encoder.layer.1.attention.output.dense"], [".encoder.layer.0."]) is None
    assert split_at(source, [".no.such.layer."]) is None


@pytest.mark.parametrize("stack", [("", 0), ("no.such.layers", 3)])
def test_without_a_known_layer_stack_the_whole_model_runs_in_bfloat16_with_a_warning(converted, stack, caplog):
    from rerankforge.retrieval.openvino_split import bfloat16_parts

    source, _ = converted
    with caplog.at_level("WARNING"):
        assert bfloat16_parts(source, stack) == ([source], [True])
    assert "whole model runs in bfloat16" in caplog.text

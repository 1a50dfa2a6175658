"""Cutting a converted OpenVINO transformer into parts compiled in different precisions.

Keeping a single block in float32 reduces the bfloat16 error most when that block is the last layer's attention: on
all-MiniLM-L6-v2 over 600 SciFact passages (mean 1 - cosine against float32) the whole model in bfloat16 gives
1.71e-5, its last attention block in float32 1.32e-5, its whole last layer in float32 1.12e-5, and only its last
feed-forward block in float32 1.51e-5. The attention block alone in float32 also costs less speed than the whole
layer (49 vs 44 docs/s, where bfloat16 throughout gave 57; bench/README.md). OpenVINO's CPU plugin has one
precision per compiled model, so the graph is cut at single hidden-state tensors and each part is compiled on its
own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import torch

logger = logging.getLogger(__name__)

HIDDEN = "hidden_state"  # a later part's extra input: the hidden state where the graph was cut


def layer_stack(hf_model: torch.nn.Module) -> Optional[tuple[str, int]]:
    """``(name, count)`` of ``hf_model``'s transformer layers, taken to be its longest ``ModuleList``
    (``("encoder.layer", 6)`` for BERT); None when it has none."""
    lists = [(name, len(module)) for name, module in hf_model.named_modules()
             if isinstance(module, torch.nn.ModuleList)]
    return max(lists, key=lambda item: item[1]) if lists else None


def _upstream(outputs) -> dict[str, object]:
    """Every node that ``outputs`` depend on, by unique name."""
    seen: dict[str, object] = {}
    stack = [output.get_node() for output in outputs]
    while stack:
        node = stack.pop()
        if node.get_name() not in seen:
            seen[node.get_name()] = node
            stack.extend(port.get_source_output().get_node() for port in node.inputs())
    return seen


def _model(outputs, parameters, name: str):
    """An ``openvino.Model`` of ``outputs`` over those of ``parameters`` they use."""
    # optional extra [openvino]
    import openvino as ov

    used = _upstream(outputs)
    return ov.Model(outputs, [p for p in parameters if p.get_name() in used], name)


def _cut_output(model, ops_named: str):
    """The last (in graph order) float32 ``[batch, tokens, hidden]`` output among ops whose name has ``ops_named``;
    None when there is none."""
    # optional extra [openvino]
    import openvino as ov

    outputs = [op.output(0) for op in model.get_ordered_ops()
               if ops_named in op.get_friendly_name() and op.get_output_size() == 1
               and op.output(0).get_element_type() == ov.Type.f32 and op.output(0).get_partial_shape().rank == 3]
    return outputs[-1] if outputs else None


def _cut(model, ops_named: str):
    """``(before, after)``: ``model`` up to the output ``_cut_output`` finds, and from there on (that output is the
    input ``HIDDEN``); None when there is no such output."""
    # optional extra [openvino]
    import openvino as ov

    before_model, after_model = model.clone(), model.clone()
    cut = _cut_output(before_model, ops_named)
    if cut is None:
        return None
    before = _model([cut], before_model.get_parameters(), "before")
    cut = _cut_output(after_model, ops_named)
    hidden = ov.opset13.parameter(cut.get_partial_shape(), cut.get_element_type(), HIDDEN)
    hidden.output(0).set_names({HIDDEN})
    for consumer in list(cut.get_target_inputs()):
        consumer.replace_source_output(hidden.output(0))
    return before, _model([r.output(0) for r in after_model.get_results()],
                          [hidden, *after_model.get_parameters()], "after")


def split_at(source, cuts: Sequence[str], not_after: Sequence[str] = ()) -> Optional[list]:
    """``source`` (an ``openvino.Model`` or ``.xml`` path) cut in turn at each of ``cuts`` (name fragments, see
    ``_cut_output``): ``len(cuts) + 1`` models, each after the first taking the previous one's output as ``HIDDEN``
    beside the model's own inputs. None when a cut is not found, or when a later part would compute a matrix
    product named with any of ``not_after`` again (the cut was not the only tensor crossing it, e.g. a residual
    branch)."""
    # optional extra [openvino]
    import openvino as ov

    rest = ov.Core().read_model(source) if isinstance(source, (str, Path)) else source
    parts = []
    for ops_named in cuts:
        cut = _cut(rest, ops_named)
        if cut is None:
            return None
        before, rest = cut
        again = [node.get_friendly_name() for node in _upstream([r.output(0) for r in rest.get_results()]).values()
                 if node.get_type_name() == "MatMul"]  # shared mask ops may cross a cut; layer weights may not
        if any(earlier in name for name in again for earlier in not_after):
            return None
        parts.append(before)
    return parts + [rest]


def bfloat16_parts(source, stack: tuple[str, int]) -> tuple[list, list[bool]]:
    """The parts of ``source`` to compile and whether each runs in bfloat16: the last layer's attention block in
    float32 and the rest in bfloat16; failing that cut, the whole last layer in float32; failing that (no layer
    stack, unknown op names), the whole model in bfloat16, with a warning."""
    if stack[1] >= 2:
        name, count = stack
        earlier = [f".{name}.{i}." for i in range(count - 1)]
        attention = [earlier[-1], f".{name}.{count - 1}.attention"]
        for cuts, in_bf16 in ((attention, [True, False, True]), (earlier[-1:], [True, False])):
            parts = split_at(source, cuts, earlier)
            if parts is not None:
                return parts, in_bf16
    logger.warning("The last transformer layer of this model was not found in its OpenVINO graph: the whole "
                   "model runs in bfloat16, so embeddings drift further from float32.")
    return [source], [True]

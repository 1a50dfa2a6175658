"""int8 quantization settings for the CPU at hand."""

from __future__ import annotations

import pytest

from rerankforge.models import loading, openvino_backend

nncf = pytest.importorskip("nncf")
OverflowFix = pytest.importorskip("nncf.quantization.advanced_parameters").OverflowFix


@pytest.mark.parametrize("flags, fix", [({"avx2"}, OverflowFix.ENABLE), ({"avx2", "avx512f"}, OverflowFix.ENABLE),
                                        ({"avx512_vnni"}, None), ({"avx_vnni"}, None), ({"amx_int8"}, None)])
def test_int8_weights_are_7_bit_only_on_a_cpu_without_vnni(monkeypatch, flags, fix):
    monkeypatch.setattr(loading, "cpu_flags", lambda: flags)
    params = openvino_backend.int8_parameters(nncf, disable_bias_correction=True)
    assert params.overflow_fix == fix  # None: NNCF's default, the fix on the first layer only
    assert params.disable_bias_correction

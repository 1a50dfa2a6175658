"""Precision choice: bfloat16 only where the hardware does bfloat16 math natively."""

from __future__ import annotations

import torch

from rerankforge.models import loading


def _cpu(monkeypatch, amx: bool, flags: set[str]) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(loading, "cpu_flags", lambda: flags)


def test_a_cpu_with_avx512_bf16_but_no_amx_uses_bfloat16(monkeypatch):
    _cpu(monkeypatch, amx=False, flags={"avx512f", "avx512_bf16"})
    assert loading.bf16_is_fast("cpu")


def test_a_cpu_with_amx_uses_bfloat16(monkeypatch):
    _cpu(monkeypatch, amx=True, flags=set())
    assert loading.bf16_is_fast("cpu")


def test_a_cpu_without_native_bfloat16_keeps_float32(monkeypatch):
    _cpu(monkeypatch, amx=False, flags={"avx2", "avx512f", "avx512_vnni"})
    assert not loading.bf16_is_fast("cpu")


def test_cpu_flags_reads_proc_cpuinfo_or_returns_nothing(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\nbugs\t\t: none\n", encoding="utf-8")
    real_path = loading.Path
    monkeypatch.setattr(loading, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    assert loading.cpu_flags() == {"fpu", "sse2", "avx512_bf16"}
    monkeypatch.setattr(loading, "Path", lambda p: tmp_path / "missing")
    assert loading.cpu_flags() == set()


def test_usable_positions_follow_how_the_model_encodes_positions():
    from transformers import BertConfig, DebertaV2Config, RobertaConfig

    from rerankforge.models.loading import usable_positions

    assert usable_positions(BertConfig(max_position_embeddings=512)) == 512
    assert usable_positions(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512  # offset by pad + 1
    # relative positions: 512 embeddings do not bound the length
    assert usable_positions(DebertaV2Config(max_position_embeddings=512, position_biased_input=False)) is None

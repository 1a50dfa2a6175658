"""The bi-encoder on OpenVINO (encoder.backend=openvino, float32 / bfloat16 / int8) against torch, its cache keys and checks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import WORDS

from rerankforge.core.config import ConfigError, load_config
from rerankforge.data_prep.config import MineConfig
from rerankforge.retrieval.config import EncoderConfig, FirstStageConfig
from rerankforge.retrieval.encode import cached_embeddings, encode_to_file, load_encoder

PROMPT = "query: "


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 40)))) for _ in range(n)]


def _encoder(path: str, **settings):
    return load_encoder(EncoderConfig(name_or_path=path, batch_size=8, **settings))


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _texts(120, seed=0)


@pytest.fixture(scope="module")
def torch_vectors(tiny_encoder, corpus, tmp_path_factory) -> np.ndarray:
    return np.array(cached_embeddings(_encoder(tiny_encoder), corpus, "corpus", tmp_path_factory.mktemp("c"),
                                      PROMPT)[0])


def test_openvino_float32_matches_torch(tiny_encoder, corpus, torch_vectors, tmp_path):
    ov = _encoder(tiny_encoder, backend="openvino")
    vectors, _ = cached_embeddings(ov, corpus, "corpus", tmp_path, PROMPT)
    np.testing.assert_allclose(vectors, torch_vectors, atol=1e-4)
    # the small-batch query path of FirstStage calls model.encode directly
    direct = ov.model.encode(corpus[:5], prompt=PROMPT, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(direct, torch_vectors[:5], atol=1e-4)


@pytest.mark.skipif(not __import__("rerankforge.models.loading", fromlist=["x"]).bf16_is_fast("cpu"),
                    reason="OpenVINO runs bfloat16 natively only on CPUs with AMX or AVX-512 BF16")
def test_openvino_bfloat16_is_close_to_torch_and_keyed_apart(tiny_encoder, corpus, torch_vectors, tmp_path):
    bf16 = _encoder(tiny_encoder, backend="openvino", dtype="bfloat16")
    vectors, path = cached_embeddings(bf16, corpus, "corpus", tmp_path, PROMPT)
    assert bf16.openvino.bf16 and not bf16.bf16  # OpenVINO's precision, not torch autocast
    cosine = np.sum(np.asarray(vectors) * torch_vectors, axis=1)
    assert cosine.min() >= 0.999, f"bfloat16 rows drift from torch: min cosine {cosine.min():.5f}"
    assert np.abs(vectors - torch_vectors).max() > 1e-6  # really bfloat16, not the float32 model
    # queries run in float32: they match torch as the float32 model does, both cached and direct
    queries, _ = cached_embeddings(bf16, corpus, "queries", tmp_path, PROMPT)
    np.testing.assert_allclose(queries, torch_vectors, atol=1e-4)
    with bf16.query_precision():
        direct = bf16.model.encode(corpus[:5], prompt=PROMPT, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(direct, torch_vectors[:5], atol=1e-4)
    again = bf16.model.encode(corpus[:5], prompt=PROMPT, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(again - torch_vectors[:5]).max() > 1e-6  # outside the context: bfloat16 again
    float32 = _encoder(tiny_encoder, backend="openvino")
    assert cached_embeddings(float32, corpus, "corpus", tmp_path, PROMPT)[1] != path
    assert _encoder(tiny_encoder, backend="openvino", dtype="auto").fingerprint == bf16.fingerprint


@pytest.mark.skipif(not __import__("rerankforge.models.loading", fromlist=["x"]).bf16_is_fast("cpu"),
                    reason="OpenVINO runs bfloat16 natively only on CPUs with AMX or AVX-512 BF16")
def test_openvino_bfloat16_runs_the_last_attention_in_float32_and_drifts_less(tiny_encoder, corpus, torch_vectors,
                                                                               tmp_path):
    import openvino as ov

    from rerankforge.retrieval.openvino_encoder import compile_config

    bf16 = _encoder(tiny_encoder, backend="openvino", dtype="bfloat16")
    assert bf16.openvino.precisions == "bf16+f32+bf16"
    assert [part.get_property("INFERENCE_PRECISION_HINT") for part in bf16.openvino.compiled.chain] == \
        [ov.Type.bf16, ov.Type.f32, ov.Type.bf16]
    assert _encoder(tiny_encoder, backend="openvino").openvino.precisions == "f32"
    cut_error = 1 - np.sum(cached_embeddings(bf16, corpus, "corpus", tmp_path, PROMPT)[0] * torch_vectors, axis=1)
    # the same model with every layer in bfloat16 drifts further from torch (on this tiny model by ~10% with
    # AVX512-BF16, more with AMX)
    bf16.openvino.compiled = ov.Core().compile_model(bf16.openvino.source, "CPU", compile_config(True))
    whole = bf16.model.encode(corpus, prompt=PROMPT, normalize_embeddings=True, convert_to_numpy=True)
    whole_error = 1 - np.sum(whole * torch_vectors, axis=1)
    assert cut_error.mean() < whole_error.mean(), (cut_error.mean(), whole_error.mean())


def test_openvino_int8_is_quantized_and_close_to_torch(tiny_encoder, corpus, torch_vectors, tmp_path):
    int8 = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    vectors, _ = cached_embeddings(int8, corpus, "corpus", tmp_path, PROMPT)
    saved = list((tmp_path / "openvino").glob("*/openvino/openvino_model_qint8_quantized.xml"))
    assert len(saved) == 1
    cosine = np.sum(np.asarray(vectors) * torch_vectors, axis=1)  # both L2-normalised
    assert cosine.min() >= 0.99, f"int8 rows drift from torch: min cosine {cosine.min():.4f}"
    assert np.abs(vectors - torch_vectors).max() > 1e-4  # really int8, not the float32 model


def test_int8_calibration_is_deterministic_and_reused(tiny_encoder, corpus, tmp_path, monkeypatch):
    first = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    a, _ = cached_embeddings(first, corpus, "corpus", tmp_path / "one", PROMPT)
    second = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    b, _ = cached_embeddings(second, corpus, "corpus", tmp_path / "two", PROMPT)
    np.testing.assert_array_equal(a, b)  # same seeded sample, same quantized model
    assert first.fingerprint == second.fingerprint

    import nncf

    monkeypatch.setattr(nncf, "quantize", lambda *a, **k: pytest.fail("re-calibrated a saved int8 model"))
    third = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    third.calibrate(corpus, PROMPT, tmp_path / "one")
    assert third.fingerprint == first.fingerprint


def test_an_int8_model_made_without_vnni_is_saved_apart(tiny_encoder, corpus, tmp_path, monkeypatch):
    from rerankforge.models import loading

    for flags in ({"avx512_vnni"}, {"avx2"}):  # 8-bit weights, then 7-bit ones (int8_parameters)
        monkeypatch.setattr(loading, "cpu_flags", lambda flags=flags: flags)
        _encoder(tiny_encoder, backend="openvino", quantize="int8").calibrate(corpus, PROMPT, tmp_path)
    assert len(list(tmp_path.rglob("openvino_model_qint8_quantized.xml"))) == 2


def test_cache_keys_differ_by_backend_quantize_and_calibration(tiny_encoder, corpus, tmp_path):
    encoders = [_encoder(tiny_encoder), _encoder(tiny_encoder, backend="openvino"),
                _encoder(tiny_encoder, backend="openvino", quantize="int8")]
    files = {cached_embeddings(e, corpus, "corpus", tmp_path, None)[1] for e in encoders}
    assert len(files) == 3 and len({e.fingerprint for e in encoders}) == 3
    other = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    other.calibrate(_texts(120, seed=1), None, tmp_path)  # another corpus: another int8 model
    assert other.fingerprint != encoders[2].fingerprint


def test_int8_without_a_corpus_says_to_encode_it_first(tiny_encoder, tmp_path):
    int8 = _encoder(tiny_encoder, backend="openvino", quantize="int8")
    with pytest.raises(RuntimeError, match="encode the corpus first"):
        encode_to_file(int8, ["a query"], tmp_path / "q.npy", None, "queries")


def test_missing_openvino_names_the_pip_command(tiny_encoder, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ImportError, match=r"pip install 'rerankforge\[openvino\]'"):
        _encoder(tiny_encoder, backend="openvino")


@pytest.mark.parametrize("settings, expected", [
    ({"quantize": "int8"}, ["encoder.quantize=int8", "encoder.backend=torch"]),
    ({"backend": "openvino", "quantize": "int4"}, ["encoder.quantize", "'int4'"]),
    ({"backend": "onnx"}, ["encoder.backend", "'onnx'"]),
    ({"backend": "openvino", "multi_process_devices": ["cpu", "cpu"]}, ["encoder.multi_process_devices"]),
    ({"backend": "openvino", "device": "cuda"}, ["encoder.device='cuda'"]),
])
def test_config_problems_name_the_keys(settings, expected):
    with pytest.raises(ValueError) as error:
        EncoderConfig(**settings)
    for part in expected:
        assert part in str(error.value)


def test_config_file_overrides_are_checked():
    with pytest.raises(ConfigError, match="encoder.quantize=int8 needs encoder.backend=openvino"):
        load_config(MineConfig, None, ["first_stage.encoder.quantize=int8"])
    cfg = load_config(MineConfig, None, ["first_stage.encoder.backend=openvino", "first_stage.encoder.quantize=int8"])
    assert (cfg.first_stage.encoder.backend, cfg.first_stage.encoder.quantize) == ("openvino", "int8")


def test_mine_with_the_int8_openvino_encoder(beir_dir, tiny_encoder, tmp_path):
    """The first stage calibrates on the corpus, then encodes queries (cached and direct) with the same model."""
    from datasets import load_from_disk

    from rerankforge.data_prep.config import MiningConfig
    from rerankforge.data_prep.mine import mine
    from rerankforge.retrieval.config import DataConfig

    cfg = MineConfig(data=DataConfig(path=str(beir_dir), dev_fraction=0),
                     first_stage=FirstStageConfig("dense", EncoderConfig(
                         name_or_path=tiny_encoder, batch_size=4, backend="openvino", quantize="int8")),
                     mining=MiningConfig(range_max=30, num_negatives=3, relative_margin=None),
                     output_dir=str(tmp_path / "mined"), cache_dir=str(tmp_path / "cache"))
    rows = load_from_disk(str(mine(cfg) / "dataset"))
    assert len(rows) == 8 and all(len(r["negative_ids"]) == 3 for r in rows)
    assert list((tmp_path / "cache" / "openvino").glob("*/openvino/openvino_model_qint8_quantized.xml"))

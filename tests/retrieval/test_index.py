"""FAISS indexes: IVF-PQ recall against exact search, its settings, the on-disk cache, mmap loading, GPU choice."""

import faiss
import numpy as np
import pytest

from rerankforge.core.config import ConfigError, load_config
from rerankforge.data_prep.config import MineConfig
from rerankforge.retrieval import index as index_mod
from rerankforge.retrieval.config import IndexConfig
from rerankforge.retrieval.index import build_index, default_pq_m, index_path, load_or_build_index, search, to_device

DIM = 64


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 200 fixed centres: neighbourhoods like real embeddings', unlike isotropic noise."""
    centres = np.random.default_rng(0).standard_normal((200, DIM))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 200, size=n)] + rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    return clustered(5000, seed=1)


@pytest.fixture(scope="module")
def corpus(big) -> np.ndarray:
    """Enough rows to train 4-byte PQ codes quickly: the tests of everything but recall."""
    return big[:2000]


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(200, seed=2)


def recall_at_10(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)]))


def test_ivfpq_recall_at_10_against_flat(big, queries):
    _, exact = search(build_index(big, IndexConfig(type="flat")), queries, 10, show_progress=False)
    config = IndexConfig(type="ivfpq", nlist=64, nprobe=8, pq_m=32)
    index = build_index(big, config)
    index_mod.set_search_parameters(index, config)
    assert isinstance(index, faiss.IndexIVFPQ) and (index.pq.M, index.pq.nbits, index.nlist) == (32, 8, 64)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    _, approx = search(index, queries, 10, show_progress=False)
    assert recall_at_10(approx, exact) >= 0.85  # measured 0.891 (32 bytes a vector instead of 256)
    index.nprobe = 1  # fewer lists searched: recall must drop, else nprobe is not reaching the index
    assert recall_at_10(search(index, queries, 10, show_progress=False)[1], exact) < recall_at_10(approx, exact)


def test_pq_m_must_divide_the_dimension(corpus):
    with pytest.raises(ValueError, match=r"index\.pq_m=10 does not divide the embedding dimension 64.*"
                                         r"\[1, 2, 4, 8, 16, 32, 64\].*null for 8"):
        build_index(corpus, IndexConfig(type="ivfpq", nlist=8, pq_m=10))
    assert (default_pq_m(64), default_pq_m(384), default_pq_m(768), default_pq_m(100), default_pq_m(6)) == \
        (8, 48, 96, 10, 1)


def test_index_config_keys_load_and_bad_values_are_named():
    cfg = load_config(MineConfig, None, [f"first_stage.index.{kv}" for kv in (
        "type=ivfpq", "pq_m=16", "train_size=1000", "device=cpu", "mmap=true")])
    index = cfg.first_stage.index
    assert (index.type, index.pq_m, index.pq_nbits, index.train_size) == ("ivfpq", 16, 8, 1000)
    with pytest.raises(ConfigError, match=r"index\.pq_nbits must be in \[1, 16\].*got 0"):
        load_config(MineConfig, None, ["first_stage.index.pq_nbits=0"])
    with pytest.raises(ConfigError, match=r"index\.train_size must be >= 1 or null, got 0"):
        load_config(MineConfig, None, ["first_stage.index.train_size=0"])
    with pytest.raises(ConfigError, match="index.device"):
        load_config(MineConfig, None, ["first_stage.index.device=tpu"])


@pytest.mark.parametrize("kind, train_size, expected", [("ivfpq", 1500, 1500), ("ivfpq", None, 4 * 256),
                                                        ("ivf", 500, 500), ("ivf", 10 ** 6, 2000)])
def test_train_size_is_the_training_sample(corpus, monkeypatch, kind, train_size, expected):
    cls = faiss.IndexIVFPQ if kind == "ivfpq" else faiss.IndexIVFFlat
    trained = []
    real_train = cls.train

    def spy(self, x):
        trained.append(len(x))
        return real_train(self, x)

    monkeypatch.setattr(cls, "train", spy)
    index = build_index(corpus, IndexConfig(type=kind, nlist=4, pq_m=4, train_size=train_size))
    assert trained == [expected] and index.is_trained and index.ntotal == len(corpus)


def test_a_training_sample_smaller_than_the_codebooks_is_an_error(corpus):
    with pytest.raises(ValueError, match=r"needs at least 256 training vectors \(nlist=8, 2\*\*pq_nbits=256 "
                                         r"centroids to train\), but its sample has 100 \(index\.train_size=100"
                                         r".*raise index\.train_size"):
        build_index(corpus, IndexConfig(type="ivfpq", nlist=8, train_size=100))


def test_saved_index_is_reused_and_named_by_its_build_parameters(corpus, tmp_path, monkeypatch):
    emb = tmp_path / "corpus-abc.npy"
    config = IndexConfig(type="ivfpq", nlist=16, pq_m=4)
    built = []
    real_build = index_mod.build_index
    monkeypatch.setattr(index_mod, "build_index", lambda e, c: built.append(c) or real_build(e, c))
    load_or_build_index(corpus, emb, config)
    assert index_path(emb, config, *corpus.shape).name == "corpus-abc.nlist16-pq4x8-t2000.ivfpq.faiss"
    load_or_build_index(corpus, emb, IndexConfig(type="ivfpq", nlist=16, pq_m=4, nprobe=2))  # search-time only
    assert len(built) == 1
    for changed in (IndexConfig(type="ivfpq", nlist=16, pq_m=8), IndexConfig(type="ivfpq", nlist=16, pq_m=4,
                                                                               train_size=1000)):
        load_or_build_index(corpus, emb, changed)
    assert len(built) == 3 and len(list(tmp_path.glob("*.faiss"))) == 3
    assert index_path(emb, IndexConfig(), *corpus.shape).name == "corpus-abc.flat.faiss"
    assert index_path(emb, IndexConfig(type="hnsw"), *corpus.shape).name == "corpus-abc.m32.hnsw.faiss"


@pytest.mark.parametrize("kind", ["ivfpq", "ivf", "flat", "hnsw"])
def test_mmap_load_gives_the_same_results(corpus, queries, tmp_path, kind):
    emb = tmp_path / "corpus-abc.npy"
    in_ram = load_or_build_index(corpus, emb, IndexConfig(type=kind, nlist=16, nprobe=4, pq_m=4))
    mapped = load_or_build_index(corpus, emb, IndexConfig(type=kind, nlist=16, nprobe=4, pq_m=4, mmap=True))
    if kind.startswith("ivf"):  # the lists are read from the file, not copied into RAM
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(mapped).invlists)
        assert isinstance(lists, faiss.OnDiskInvertedLists)
    expected, got = search(in_ram, queries, 10, show_progress=False), search(mapped, queries, 10, show_progress=False)
    assert np.array_equal(expected[1], got[1]) and np.array_equal(expected[0], got[0])


def test_a_fresh_mmap_build_is_mapped_too(corpus, tmp_path):
    index = load_or_build_index(corpus, tmp_path / "c.npy", IndexConfig(type="ivf", nlist=16, mmap=True))
    assert isinstance(faiss.downcast_InvertedLists(index.invlists), faiss.OnDiskInvertedLists)
    assert index.nprobe == 32 and index.ntotal == len(corpus)


def test_device_auto_stays_on_the_cpu_without_a_gpu(corpus):
    index = build_index(corpus[:500], IndexConfig())
    assert to_device(index, IndexConfig(device="auto")) is index  # this machine: faiss-cpu, no GPU


def fake_gpu_build(monkeypatch, gpus: int) -> list:
    moved = []
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: gpus)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda index: moved.append(index) or "on-gpu")
    return moved


def test_device_auto_and_gpu_use_all_gpus_on_a_gpu_build(corpus, monkeypatch):
    moved = fake_gpu_build(monkeypatch, gpus=2)
    index = build_index(corpus[:500], IndexConfig())
    assert to_device(index, IndexConfig(device="auto")) == "on-gpu" and moved == [index]
    assert to_device(index, IndexConfig(device="gpu")) == "on-gpu"
    assert to_device(index, IndexConfig(device="cpu")) is index
    hnsw = IndexConfig(type="hnsw", device="auto")
    assert to_device(index, hnsw) is index and len(moved) == 2  # FAISS has no GPU HNSW: auto keeps it on the CPU


def test_device_gpu_says_what_is_missing(corpus, monkeypatch):
    index = build_index(corpus[:500], IndexConfig())
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    with pytest.raises(RuntimeError, match=r"index\.device=gpu, but the installed FAISS .* CPU-only build.*"
                                           r"pip install faiss-gpu-cu12.*conda install"):
        to_device(index, IndexConfig(device="gpu"))
    fake_gpu_build(monkeypatch, gpus=0)
    with pytest.raises(RuntimeError, match=r"FAISS sees no GPU \(faiss\.get_num_gpus\(\) == 0\)"):
        to_device(index, IndexConfig(device="gpu"))
    fake_gpu_build(monkeypatch, gpus=1)
    with pytest.raises(RuntimeError, match="FAISS has no GPU HNSW"):
        to_device(index, IndexConfig(type="hnsw", device="gpu"))

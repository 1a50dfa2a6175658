"""Configs: every YAML in configs/ loads with its schema; bad keys and types are named with a suggestion."""

import logging
from pathlib import Path

import pytest

from rerankforge.core.config import ConfigError, dump_yaml, from_dict, load_config
from rerankforge.data_prep.config import MineConfig, SynthConfig, check_synth_config
from rerankforge.eval.config import EvalConfig, check_eval_config
from rerankforge.quickstart import QuickstartConfig
from rerankforge.train.config import TrainConfig, check_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCHEMAS = {"data_prep": MineConfig, "train": TrainConfig, "eval": EvalConfig, "configs": QuickstartConfig}  # configs/<folder>/*.yaml -> schema
ACCELERATE = "accelerate"  # accelerate's own config files, checked by accelerate's loader


def schema_of(path: Path) -> type:
    """configs/data_prep/<name>-synth.yaml are synth configs; the rest of a folder shares its schema."""
    return SynthConfig if path.stem.endswith("-synth") else SCHEMAS[path.parent.name]


def all_configs():
    return sorted(CONFIGS.rglob("*.yaml"))


def test_every_config_folder_has_a_schema():
    assert all_configs(), "no configs found"
    for path in all_configs():
        assert path.parent.name in {*SCHEMAS, ACCELERATE}, f"{path}: no schema for configs/{path.parent.name}/"


@pytest.mark.parametrize("path", all_configs(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_loads(path):
    if path.parent.name == ACCELERATE:
        from accelerate.commands.config.config_args import ClusterConfig

        assert ClusterConfig.from_yaml_file(str(path)).num_processes >= 1
        return
    cfg = load_config(schema_of(path), path)
    assert load_config(type(cfg), path) == cfg
    checks = {TrainConfig: check_train_config, EvalConfig: check_eval_config, SynthConfig: check_synth_config}
    if type(cfg) in checks:
        assert checks[type(cfg)](cfg) == []


def test_scifact_config_values():
    cfg = load_config(MineConfig, CONFIGS / "data_prep" / "scifact.yaml")
    assert cfg.first_stage.encoder.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    assert cfg.mining.num_negatives == 5 and cfg.mining.random_negatives == 2  # as the quickstart mines
    assert cfg.data.split == "train" and cfg.data.eval_split == "test" and cfg.data.dev_depth == 30


def test_overrides_apply_with_types():
    cfg = load_config(MineConfig, None, ["mining.num_negatives=3", "mining.relative_margin=null",
                                         "first_stage.encoder.multi_process_devices=[cpu,cpu]", "data.path=/x"])
    assert cfg.mining.num_negatives == 3 and cfg.mining.relative_margin is None
    assert cfg.first_stage.encoder.multi_process_devices == ["cpu", "cpu"] and cfg.data.path == "/x"


@pytest.mark.parametrize("override, message", [
    ("mining.num_negativs=3", "unknown config key 'mining.num_negativs'. Did you mean 'mining.num_negatives'?"),
    ("minig.num_negatives=3", "unknown config key 'minig'. Did you mean 'mining'?"),
    ("mining.zzz=1", "unknown config key 'mining.zzz'. Valid keys here: range_min, range_max"),
    ("seed=abc", "bad value for 'seed': Value 'abc' of type 'str' could not be converted to Integer"),
    ("mining.sampling_strategy=best", "bad value for 'mining.sampling_strategy': Invalid value 'best', "
                                      "expected one of ['top', 'random']"),
    ("num_negatives", "Override 'num_negatives' is not of the form key=value"),
])
def test_override_errors(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(MineConfig, None, [override])
    assert message in str(info.value)


def test_yaml_errors_name_the_file(tmp_path):
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("mining:\n  range_mx: 10\n")
    with pytest.raises(ConfigError, match=rf"{bad_key}: unknown config key 'mining.range_mx'. Did you mean "
                                          r"'mining.range_max'\?"):
        load_config(MineConfig, bad_key)
    broken = tmp_path / "broken.yaml"
    broken.write_text("mining:\n  range_max: [1,\n")
    with pytest.raises(ConfigError, match=rf"{broken}:\d+: invalid YAML"):
        load_config(MineConfig, broken)
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(MineConfig, tmp_path / "missing.yaml")


def test_checks_in_post_init_are_config_errors():
    with pytest.raises(ConfigError, match="need size > 0 and 0 <= overlap < size"):
        load_config(MineConfig, None, ["data.chunking.overlap=500"])


def test_dump_round_trips(tmp_path):
    cfg = load_config(MineConfig, None, ["seed=7"])
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg))
    assert load_config(MineConfig, tmp_path / "c.yaml") == cfg


def test_quickstart_recipe_is_the_one_the_readme_measured():
    """README's figures for `rerankforge quickstart` come from exactly these settings (bench/quality.py); change
    one and the figures must be measured again."""
    cfg = load_config(QuickstartConfig, CONFIGS / "quickstart.yaml")
    finetuned = cfg.eval.rerankers["finetuned"]
    assert cfg.mine.first_stage.method == "auto" and cfg.mine.data.dev_fraction == 0.1
    # the fusion weight is fitted at the depth eval reranks
    assert cfg.mine.data.dev_depth == cfg.train.data.dev_depth == finetuned.depth == 20
    assert cfg.train.data.dev == "mined" and finetuned.fusion.method == "auto" and finetuned.fusion.alpha == "auto"
    assert (cfg.train.optim.lr, cfg.train.optim.head_lr_multiplier, cfg.train.model.dropout) == (2e-4, 10, 0.0)
    assert (cfg.train.max_steps, cfg.train.eval_every, cfg.train.batch_size, cfg.train.data.group_size) == (300, 50, 4, 8)
    assert cfg.train.model.max_length == 256 and finetuned.max_length is None  # eval reads the checkpoint's 256
    assert finetuned.max_passage_tokens == 4096  # long passages as windows, as the Cohere route reads them
    assert cfg.train.mixed_precision == "auto" and cfg.mine.first_stage.encoder.dtype == finetuned.dtype == "auto"
    # your own data: labels and chunking follow the data; a long document is read by 3 passages (bench/README.md)
    assert (cfg.labels, cfg.test_fraction, cfg.mine.data.chunking.mode) == ("auto", 0.2, "auto")
    assert cfg.mine.data.chunking.read_passages == 3


def test_yaml_boolean_words_are_kept_where_a_choice_of_words_is_expected(tmp_path):
    """YAML reads `off` and `no` as false: where the schema wants one of a set of strings, they stay words."""
    from rerankforge.eval.config import EvalConfig
    from rerankforge.quickstart import QuickstartConfig

    cfg = load_config(QuickstartConfig, None, ["mine.data.chunking.mode=off", "eval.rerankers.x.fusion.method=none"])
    assert cfg.mine.data.chunking.mode == "off" and cfg.eval.rerankers["x"].fusion.method == "none"
    path = tmp_path / "eval.yaml"
    path.write_text("data:\n  chunking:\n    mode: off\nrerankers:\n  base:\n    model: x\n    fusion:\n"
                    "      method: none\nplots: no\n")
    cfg = load_config(EvalConfig, path)
    assert cfg.data.chunking.mode == "off" and cfg.plots is False  # a real boolean stays one


def test_keys_that_moved_into_the_first_stage_block_still_load_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="rerankforge.core.config"):
        cfg = load_config(MineConfig, None, ["encoder.batch_size=8", "mining.candidates=bm25", "mining.rrf_k=30"])
    assert (cfg.first_stage.encoder.batch_size, cfg.first_stage.method, cfg.first_stage.rrf_k) == (8, "bm25", 30)
    assert "mining.candidates -> first_stage.method" in caplog.text and "write the new ones" in caplog.text
    synth = load_config(SynthConfig, None, ["first_stage=dense", "bm25.k1=1.2"])
    assert (synth.first_stage.method, synth.first_stage.bm25.k1) == ("dense", 1.2)
    nested = load_config(QuickstartConfig, None, ["mine.mining.candidates=hybrid", "eval.retrieve.method=bm25"])
    assert (nested.mine.first_stage.method, nested.eval.first_stage.method) == ("hybrid", "bm25")


def test_an_older_manifests_config_loads_and_the_new_key_wins():
    old = {"retrieve": {"method": "bm25", "top_k": 20, "encoder": {"batch_size": 4}}}
    cfg = from_dict(EvalConfig, old)
    assert (cfg.first_stage.method, cfg.retrieve.top_k, cfg.first_stage.encoder.batch_size) == ("bm25", 20, 4)
    assert old["retrieve"]["method"] == "bm25"  # the caller's dict is not changed
    both = from_dict(MineConfig, {"encoder": {"batch_size": 4, "dtype": "auto"},
                                  "first_stage": {"encoder": {"batch_size": 9}}})
    assert (both.first_stage.encoder.batch_size, both.first_stage.encoder.dtype) == (9, "auto")


@pytest.mark.parametrize("override, meant", [("lr=1e-5", "optim.lr"), ("warmup=0.1", "optim.warmup_ratio"),
                                             ("max_lenght=128", "model.max_length"), ("top_k=5", None)])
def test_a_key_given_without_its_block_is_found_by_its_last_part(override, meant):
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, None, [override])
    assert (f"Did you mean '{meant}'?" in str(info.value)) if meant else "Did you mean" not in str(info.value)

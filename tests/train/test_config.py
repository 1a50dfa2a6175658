"""Training config checks that do not need data."""

from rerankforge.core.config import load_config
from rerankforge.train.config import TrainConfig, check_train_config


def test_a_lora_adapter_over_a_gguf_base_is_refused_before_training_and_merged_is_not():
    gguf = ["model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf", "lora.enabled=true"]
    adapter = check_train_config(load_config(TrainConfig, None, [*gguf, "lora.export=adapter"]))
    assert adapter == ["lora.export=adapter with model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf: an adapter records "
                       "only its base's name, so eval, serve and Reranker(final) could not load the GGUF base. Set "
                       "lora.export=merged (a plain checkpoint that loads anywhere), or train from a base without a "
                       "GGUF file (model.gguf_file=null)."]
    assert not check_train_config(load_config(TrainConfig, None, [*gguf, "lora.export=merged"]))
    assert not check_train_config(load_config(TrainConfig, None, ["lora.enabled=true", "lora.export=adapter"]))


def test_data_dev_max_passage_tokens_below_one_is_a_config_problem():
    cfg = TrainConfig()
    cfg.data.dev_max_passage_tokens = 0
    assert ("data.dev_max_passage_tokens must be >= 1 (read long dev passages as windows, as eval's "
            "max_passage_tokens) or null (cut them), got 0.") in check_train_config(cfg)

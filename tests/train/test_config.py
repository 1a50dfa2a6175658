"""Training config checks that do not need data."""

from rerankforge.core.config import load_config
from rerankforge.train.config import TrainConfig, check_train_config


def test_a_lora_adapter_over_a_gguf_base_is_refused_before_training_and_merged_is_not():
    gguf = ["model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf", "lora.enabled=true"]
    adapter = check_train_config(load_config(TrainConfig, None, [*gguf, "lora.export=adapter"]))
    assert adapter == ["lora.export=adapter needs a base model that loads without a GGUF file, but model.gguf_file="
                       "SmolLM2-135M-Instruct.Q4_1.gguf: set lora.export=merged (a plain checkpoint that loads "
                       "anywhere)."]
    assert not check_train_config(load_config(TrainConfig, None, [*gguf, "lora.export=merged"]))
    assert not check_train_config(load_config(TrainConfig, None, ["lora.enabled=true", "lora.export=adapter"]))

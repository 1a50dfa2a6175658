"""Where checkpoints live, which one to resume, and how the final model is written."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Optional


class Progress:
    """Loop state saved with every checkpoint (``accelerator.register_for_checkpointing``)."""

    def __init__(self):
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best, self.bad_evals = float("-inf"), 0

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


COMPLETE = ".complete"  # written after save_state returns: a run killed while saving leaves no marker


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete ``output_dir/checkpoints/checkpoint_N`` folders, oldest first."""
    folder = Path(output_dir) / "checkpoints"
    found = [p for p in folder.glob("checkpoint_*")
             if re.fullmatch(r"checkpoint_\d+", p.name) and (p / COMPLETE).exists()] if folder.exists() else []
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def next_checkpoint_number(output_dir: str | Path) -> int:
    """The number after every ``checkpoint_N`` folder in ``output_dir/checkpoints`` (complete or not; 0 when none):
    a new run numbers its checkpoints after an earlier run's instead of failing on an existing folder."""
    folder = Path(output_dir) / "checkpoints"
    taken = [int(p.name.split("_")[1]) for p in folder.glob("checkpoint_*") if re.fullmatch(r"checkpoint_\d+", p.name)]
    return max(taken, default=-1) + 1


def save_checkpoint(accelerator) -> None:
    """``accelerator.save_state()`` plus the completeness marker that ``resume_from=latest`` looks for."""
    folder = Path(accelerator.save_state())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (folder / COMPLETE).touch()


def resume_dir(output_dir: str | Path, resume_from: Optional[str]) -> Optional[Path]:
    """The checkpoint to resume: ``latest`` (None when there is none yet) or an explicit folder.

    Raises:
        FileNotFoundError: an explicit folder that does not exist.
    """
    if not resume_from:
        return None
    if resume_from == "latest":
        found = checkpoint_dirs(output_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from={resume_from}: no such checkpoint folder. Use resume_from=latest or "
                                f"one of {[str(p) for p in checkpoint_dirs(output_dir)]}.")
    return path


def save_final(model, tokenizer, folder: Path, max_length: int, lora_export: str, base_reference: str) -> None:
    """Write a folder that loads with CrossEncoder, AutoModelForSequenceClassification and pipeline().

    A LoRA model is saved merged (a plain model; the training copy keeps its adapters) or as an adapter whose
    config names ``base_reference`` (the Hub id from the config, not a machine-local path).
    """
    if hasattr(model, "merge_and_unload"):
        if lora_export == "merged":
            model = copy.deepcopy(model).merge_and_unload()
        else:
            for peft_config in model.peft_config.values():
                peft_config.base_model_name_or_path = base_reference
    model.save_pretrained(folder)
    tokenizer.model_max_length = max_length  # CrossEncoder and pipeline() read their max length from here
    tokenizer.save_pretrained(folder)

"""The processes of an ``accelerate launch`` (one when not launched): split work, gather results, share files.

Every helper is a collective: all processes must call it, in the same order. Files written by several processes
(the embedding memmap) must sit on a file system they all see (``cache_dir``).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence


def state():
    """accelerate's ``PartialState``: the process's rank and count, and its barriers.

    Without CUDA (or with ``ACCELERATE_USE_CPU``) it is a CPU state, so processes started by ``torchrun`` or
    ``accelerate launch --multi_gpu`` on a CPU-only machine join one gloo group; ``accelerate launch --cpu`` starts
    several processes only through MPI (``--mpirun_hostfile``).
    """
    # torch is slow to import; only this path needs it
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())


@contextlib.contextmanager
def share_of(items: Sequence) -> Iterator[list]:
    """This process's contiguous share of ``items`` (all of them when there is one process), in order."""
    with state().split_between_processes(list(items)) as share:
        yield list(share)


def gather_lists(items: list) -> list:
    """Every process's ``items`` concatenated in rank order: with ``share_of``, the original order."""
    # accelerate imports torch (slow); only this path needs it
    from accelerate.utils import gather_object

    return list(gather_object(items)) if state().num_processes > 1 else items


def gather_counts(counts: Counter) -> Counter:
    """The sum of every process's ``counts``, keeping keys that are zero everywhere."""
    total = Counter({key: 0 for key in counts})
    for part in gather_lists([counts]):
        total.update(part)
    return total


def scratch_path(path: Path) -> Path:
    """One scratch name for ``path`` on every process: the main process's pid is broadcast, so concurrent
    independent runs never share a scratch file."""
    # accelerate imports torch (slow); only this path needs it
    from accelerate.utils import broadcast_object_list

    pid = broadcast_object_list([os.getpid()])[0] if state().num_processes > 1 else os.getpid()
    return path.with_name(f".{path.name}.partial-{pid}")


def main_first():
    """A context in which the main process runs first (it builds a cache), then the others (they load it)."""
    return state().main_process_first()

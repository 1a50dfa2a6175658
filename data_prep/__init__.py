"""data_prep: load a corpus and labelled queries, mine hard negatives, write a training set.

    from rerankforge.data_prep import MineConfig, mine, select_negatives
"""

from rerankforge.data_prep.config import MineConfig
from rerankforge.data_prep.negatives import SelectionOptions, select_negatives
from rerankforge.data_prep.problems import DataError, Problem

__all__ = ["DataError", "MineConfig", "Problem", "SelectionOptions", "mine", "select_negatives"]


def mine(cfg: MineConfig):
    """See :func:`rerankforge.data_prep.mine.mine` (imported lazily: it pulls in torch)."""
    from rerankforge.data_prep.mine import mine as _mine

    return _mine(cfg)

"""data_prep: load a corpus and labelled queries, mine hard negatives, write a training set.

    from rerankforge.data_prep import MineConfig, mine, select_negatives
"""

from rerankforge.core.problems import DataError, Problem
from rerankforge.data_prep.config import MineConfig
from rerankforge.data_prep.negatives import SelectionOptions, select_negatives

__all__ = ["DataError", "MineConfig", "Problem", "SelectionOptions", "mine", "select_negatives"]


def mine(cfg: MineConfig):
    """See :func:`rerankforge.data_prep.mine.mine` (imported lazily: it pulls in torch)."""
    # the mining stage pulls in the first stage, pyarrow and datasets: `from rerankforge.data_prep import ...`
    # of a config or a pure function should not pay for them
    from rerankforge.data_prep.mine import mine as _mine

    return _mine(cfg)

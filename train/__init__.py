"""train: fine-tune a cross-encoder on a mined training set.

``run.py`` is the loop (``accelerate launch train/run.py --config ...``), ``losses/`` the ranking losses (one per
file), ``data.py`` the groups and their batches, ``evaluate.py`` the dev evaluation that keeps the best checkpoint,
``checkpoint.py`` saving and resuming. Calling the package runs ``rerankforge.train()`` (``api.py``).
"""

from rerankforge.core.modules import callable_module

callable_module(__name__, "rerankforge.api:train")

"""The served rerankers by name, and the rule that maps a request's ``model`` field to one of them.

- No ``model`` in the request (TEI never sends one; infinity sends ``"default/not-specified"``): the default
  reranker (``ServeConfig.model``, else the first of ``models``).
- A configured name: that reranker.
- Any other name: 404 naming the choices, with one exception: on the Cohere routes of a server with a single
  reranker, every name is that reranker. Cohere's SDK requires a model and code written for Cohere's API names
  Cohere's models ("rerank-v3.5"), so such code works by changing only ``base_url``; a Cohere response carries no
  model name, so nothing claims to be what it is not. With several rerankers, an unknown name is a 404 there too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rerankforge.models.calibration import probability_of
from rerankforge.serve.batcher import MicroBatcher
from rerankforge.serve.errors import ServeError
from rerankforge.serve.schema import INFINITY_DEFAULT_MODEL


@dataclass
class Served:
    """One served reranker: its name, where it came from, the ``Reranker`` and its micro-batcher."""

    name: str
    source: str
    reranker: Any
    batcher: MicroBatcher

    def probability(self, logit: float) -> float:
        """The relevance score of a logit: the reranker's ``probability`` (calibrated when the checkpoint has a
        calibration), or the plain sigmoid for a reranker that has no such method."""
        return probability_of(self.reranker)(logit)

    @property
    def calibrated(self) -> bool:
        return getattr(self.reranker, "calibration", None) is not None


class Registry:
    """The served rerankers, the default first."""

    def __init__(self, served: list[Served]):
        self.by_name = {s.name: s for s in served}
        self.default = served[0]

    def __iter__(self):
        return iter(self.by_name.values())

    def pick(self, requested: Optional[str], any_name_if_single: bool = False) -> Served:
        """The reranker a request's ``model`` names (see the module docstring).

        Raises:
            ServeError: 404 for a name that is not served, naming the choices.
        """
        if requested is None or requested == INFINITY_DEFAULT_MODEL:
            return self.default
        if requested in self.by_name:
            return self.by_name[requested]
        if any_name_if_single and len(self.by_name) == 1:
            return self.default
        raise ServeError(404, f"model '{requested}' is not served here; choose one of: {', '.join(self.by_name)} "
                              "(or leave model out for the default, "
                              f"{self.default.name}).", tei_type="Validation")

"""Lazy names for the public API, and modules that answer a call.

Two names of the public API are also module names: ``rerankforge.train`` (the training package) and
``rerankforge.quickstart`` (its module). Python binds a submodule to its package's attribute whenever the submodule
is imported, so ``from rerankforge import train`` gives the function or the package depending on what was imported
before. ``callable_module`` makes such a module call the function, so both spellings work.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def attribute(name: str) -> Any:
    """``module:attribute`` -> the attribute, importing the module now."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


class _CallableModule(types.ModuleType):
    """A module whose call runs ``__call_target__`` (a ``module:attribute`` name)."""

    def __call__(self, *args, **kwargs):
        return attribute(self.__call_target__)(*args, **kwargs)


def callable_module(module_name: str, target: str) -> None:
    """Calling the module ``module_name`` calls ``target`` (``module:attribute``), imported at the call."""
    module = sys.modules[module_name]
    module.__call_target__ = target
    module.__class__ = _CallableModule

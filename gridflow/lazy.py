"""Modules loaded on first use, for the faces whose every command is defined at start-up.

A CLI module must import what its commands' signatures name, but not what their bodies do:
``gridflow case show`` should not wait for the demo's planner, the calendars or Jinja. A module
made here by :func:`lazy_module` is executed when one of its attributes is first read
(``importlib.util.LazyLoader``, the standard library's own way).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module object that imports itself on first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module

"""Celery runtime: the app factory, the beat schedule and thin tasks that drive the engine.

Importing this package creates nothing. ``celery -A tasks worker`` asks for ``tasks.app``;
that first access builds the one app from :class:`config.settings.Settings` (module
``__getattr__``). Code and tests that want their own app call
:func:`tasks.factory.create_app` with settings of their choosing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]

_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            from tasks.factory import create_app

            _app = create_app()
        return _app
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")

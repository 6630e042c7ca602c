"""Connections kept for the rest of a dispatcher tick: one HTTP connection per endpoint, one SMTP session
per server, instead of a connect (and a TLS handshake, an SMTP login) per message.

The dispatcher sends a tick's messages inside :func:`keep_alive`; a channel asks :func:`current` for the
scope and, after a complete exchange, gives its connection back under a key of its own (scheme, host and
port; for SMTP the login too). When the tick ends every kept connection is closed, so none is left idle
between ticks for a server to drop. Outside a scope (``gridflow notices test``, one message) a channel
connects per message as before.

A kept connection may have been closed by the server meanwhile. Each channel checks what it can before
reusing one (an idle HTTP connection that has become readable was closed; an SMTP server answers the
next command) and, where nothing of the message can have gone out, connects again: "not sent" and
"maybe sent" keep their meaning on a reused connection.

Each thread (and each asyncio context) has its own scope: the :mod:`contextvars` variable below.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any


class Kept:
    """The idle connections of one scope, at most one per key."""

    def __init__(self) -> None:
        self._idle: dict[Hashable, tuple[Any, Callable[[Any], None]]] = {}
        self.reused = 0  # connections taken again: what a test or a bench reads
        self.opened = 0  # connections made in the scope (a channel counts its own: :meth:`made`)

    def take(self, key: Hashable) -> Any | None:
        """The idle connection kept under ``key`` (now the caller's), or None."""
        found = self._idle.pop(key, None)
        if found is None:
            return None
        self.reused += 1
        return found[0]

    def made(self) -> None:
        """A channel made a new connection in this scope."""
        self.opened += 1

    def give(self, key: Hashable, conn: Any, close: Callable[[Any], None]) -> None:
        """Keep ``conn`` for the next message to the same place; ``close`` ends it when the scope does."""
        old = self._idle.pop(key, None)
        if old is not None:
            _quietly(*old)
        self._idle[key] = (conn, close)

    def close(self) -> None:
        idle, self._idle = self._idle, {}
        for conn, close in idle.values():
            _quietly(conn, close)


def _quietly(conn: Any, close: Callable[[Any], None]) -> None:
    with suppress(Exception):  # a connection that cannot even close cleanly is gone anyway
        close(conn)


_SCOPE: ContextVar[Kept | None] = ContextVar("gridflow_kept_connections", default=None)


def current() -> Kept | None:
    """The scope of the running tick, or None outside one."""
    return _SCOPE.get()


@contextmanager
def keep_alive() -> Iterator[Kept]:
    """Keep connections for the block's sends; close them all when it ends (also on an error)."""
    kept = Kept()
    token = _SCOPE.set(kept)
    try:
        yield kept
    finally:
        _SCOPE.reset(token)
        kept.close()

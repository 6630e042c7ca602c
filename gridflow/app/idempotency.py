"""Use cases: ``Idempotency-Key`` — a retried request gets the first answer, and nothing is done twice.

A key is claimed before the work starts (a row with ``status`` 0, committed), so that two copies of
one request arriving together cannot both run: the second waits for the first's answer (409 with
``Retry-After`` while it is still running). The answer is stored when the work is done; an answer
of 5xx releases the claim, so that a retry can do the work. A claim left by a process that died
is taken over after :data:`STALE_CLAIM`. Keys are per caller: one person's key never answers another's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from engine.errors import CommandRejected, InputError
from engine.store.models import IdempotencyRecord
from gridflow.app.base import Base

STALE_CLAIM = timedelta(minutes=2)
KEEP = timedelta(days=7)


class KeyInProgress(CommandRejected):
    """A request with this key is still being worked on."""


class KeyReused(InputError):
    """The key came back with a different body: it names another request."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def body_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class IdempotencyUseCases(Base):
    """Claim a key, answer a retry with the first answer, store the answer."""

    def claim_key(self, principal: str, key: str, method: str, path: str, digest: str) -> Answer | None:
        """None: the caller does the work (then :meth:`store_answer`); an :class:`Answer`: replay it."""
        if not key or len(key) > 200:
            raise InputError("Idempotency-Key: give 1 to 200 characters (a UUID the client made is best)")
        now = self.clock()
        for _ in range(2):
            with self.transaction() as session:
                found = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                    )
                )
                if found is not None:
                    if found.body_hash != digest:
                        raise KeyReused(
                            f"Idempotency-Key {key!r} was used for a different request "
                            f"({found.method} {found.path}, another body); make a new key for a new request"
                        )
                    if found.status:
                        return Answer(found.status, dict(found.headers), found.body)
                    if now - found.created_at < STALE_CLAIM:
                        raise KeyInProgress(
                            f"the request with Idempotency-Key {key!r} is still being worked on; "
                            "ask again in a moment for its answer"
                        )
                    found.created_at = now  # taken over from a process that died
                    return None
            try:
                with self.transaction() as session:
                    session.add(
                        IdempotencyRecord(
                            principal=principal,
                            key=key,
                            method=method,
                            path=path[:300],
                            body_hash=digest,
                            status=0,
                            headers={},
                            body="",
                            created_at=now,
                        )  # fmt: skip
                    )
                return None
            except Exception as exc:  # a concurrent copy claimed it first: read its row again
                if not isinstance(getattr(exc, "__cause__", None), IntegrityError) and not isinstance(
                    exc, IntegrityError
                ):
                    raise
        raise KeyInProgress(f"the request with Idempotency-Key {key!r} is being worked on; ask again in a moment")

    def store_answer(self, principal: str, key: str, answer: Answer) -> None:
        """Keep the answer for retries; a 5xx answer releases the claim instead."""
        with self.transaction() as session:
            match = (IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
            if answer.status >= 500:
                session.execute(delete(IdempotencyRecord).where(*match))
                return
            session.execute(
                update(IdempotencyRecord)
                .where(*match)
                .values(status=answer.status, headers=answer.headers, body=answer.body)
            )

    def forget_old_keys(self) -> int:
        """Delete answers older than a week (a phone retries within hours)."""
        with self.transaction() as session:
            done = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < self.clock() - KEEP))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

"""Who holds which role over a grid cell, from an in-memory snapshot of the org chart.

A role held on a place covers everything under it: a grid worker's grid, a
village secretary's village, the centre's township. The org chart changes a few
times a year and is read on every step, so it is cached in memory, keyed by the
token in ``org_meta``; ``org_repo.apply_org_chart`` writes a new token whenever
it changes anything, and every case command reads the token in the same
statement that loads the case, so a reload is seen at the very next step.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import OrgMeta, Person, Place, RoleAssignment
from engine.store.org_repo import SNAPSHOT_SEEN


@dataclass(frozen=True)
class PlaceInfo:
    id: str
    kind: str
    name: str
    active: bool
    scopes: tuple[str, ...]  # itself and every place above it
    township_id: str


@dataclass(frozen=True)
class PersonInfo:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class OrgSnapshot:
    token: str | None
    places: dict[str, PlaceInfo]
    people: dict[str, PersonInfo]
    roles: dict[str, frozenset[tuple[str, str]]]  # person id -> {(role, place id)}
    case_code_prefix: dict[str, str]  # township id -> prefix
    by_place: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # place -> (role, person)

    def grid(self, grid_id: str) -> PlaceInfo | None:
        place = self.places.get(grid_id)
        return place if place is not None and place.kind == "grid" and place.active else None

    def roles_over(self, person_id: str, grid: PlaceInfo) -> set[str]:
        """The org roles ``person_id`` holds on ``grid`` or on a place above it."""
        scopes = grid.scopes
        return {role for role, place in self.roles.get(person_id, ()) if place in scopes}

    def holders(self, role: str, grid: PlaceInfo) -> list[str]:
        """Active people who hold ``role`` on ``grid`` or on a place above it (sorted by id)."""
        found = {person for place in grid.scopes for r, person in self.by_place.get(place, ()) if r == role}
        return sorted(p for p in found if p in self.people and self.people[p].active)

    def code_prefix(self, grid: PlaceInfo) -> str:
        return self.case_code_prefix.get(grid.township_id) or grid.township_id[:2].upper()


def token_query() -> Any:
    """A scalar subquery for the current org token, to ride along with another SELECT."""
    return select(OrgMeta.token).where(OrgMeta.id == 1).scalar_subquery()


def load_snapshot(session: Session) -> OrgSnapshot:
    token = session.scalar(select(OrgMeta.token).where(OrgMeta.id == 1))
    rows = session.execute(
        select(Place.id, Place.kind, Place.name, Place.parent_id, Place.active, Place.township_id, Place.attributes)
    ).all()
    parents = {r.id: r.parent_id for r in rows}
    places = {r.id: PlaceInfo(r.id, r.kind, r.name, r.active, _scopes(r.id, parents), r.township_id) for r in rows}
    prefixes = {r.id: str(r.attributes["code"]) for r in rows if r.kind == "township" and r.attributes.get("code")}
    people = {
        r.id: PersonInfo(r.id, r.name, r.active) for r in session.execute(select(Person.id, Person.name, Person.active))
    }
    roles: dict[str, set[tuple[str, str]]] = {}
    by_place: dict[str, list[tuple[str, str]]] = {}
    for person_id, role, place_id in session.execute(
        select(RoleAssignment.person_id, RoleAssignment.role, RoleAssignment.place_id)
    ):
        roles.setdefault(person_id, set()).add((role, place_id))
        by_place.setdefault(place_id, []).append((role, person_id))
    return OrgSnapshot(
        token,
        places,
        people,
        {k: frozenset(v) for k, v in roles.items()},
        prefixes,
        {k: tuple(v) for k, v in by_place.items()},
    )


def _scopes(place_id: str, parents: dict[str, str | None]) -> tuple[str, ...]:
    chain: list[str] = []
    current: str | None = place_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return tuple(chain)


class _SnapshotCache:
    """The last few snapshots by token (tokens are random, so databases never collide)."""

    def __init__(self, size: int = 8):
        self._items: OrderedDict[str, OrgSnapshot] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, session: Session, token: str | None) -> OrgSnapshot:
        if token is not None:
            with self._lock:
                found = self._items.get(token)
                if found is not None:
                    self._items.move_to_end(token)
                    return found
        snapshot = load_snapshot(session)
        settled = session.scalar(select(OrgMeta.token).where(OrgMeta.id == 1)) == snapshot.token
        if snapshot.token is not None and settled:  # an `org load` committed while we read: don't keep it
            with self._lock:
                self._items[snapshot.token] = snapshot
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return snapshot


SNAPSHOTS = _SnapshotCache()


def snapshot(session: Session, token: str | None) -> OrgSnapshot:
    return SNAPSHOTS.get(session, token)


_CURRENT = SNAPSHOT_SEEN  # Session.info: (transaction, the snapshot it read)


def current(session: Session) -> OrgSnapshot:
    """The org chart as this transaction sees it: its token read once per transaction, not once per
    question (a request that checks scope, masks and lists the allowed steps asks three times).
    A transaction that changes the chart calls :func:`forget` so that it reads its own change."""
    transaction = session.get_transaction()
    kept = session.info.get(_CURRENT)
    if kept is not None and kept[0] is transaction:
        return kept[1]  # type: ignore[no-any-return]
    found = snapshot(session, session.scalar(select(token_query())))
    session.info[_CURRENT] = (transaction, found)
    return found


def prime(session: Session, token: str | None) -> OrgSnapshot:
    """Take the org token a query of this transaction already read (``token_query()`` riding along)
    as the one :func:`current` would read: one statement less."""
    found = snapshot(session, token)
    session.info[_CURRENT] = (session.get_transaction(), found)
    return found


def seen(session: Session) -> bool:
    """Whether this transaction has read the org token already."""
    kept = session.info.get(_CURRENT)
    return kept is not None and kept[0] is session.get_transaction()


def forget(session: Session) -> None:
    session.info.pop(_CURRENT, None)

"""Write a checked archive to the database, idempotently, in the caller's transaction.

* A household in the file is added, or updated to match the file (and made active again).
  Households the file does not name are left as they are: a file may hold one village.
* A resident is matched within its household by ID number, else by name and birth year; a
  match is updated, anyone else is added as ``<household>-<n>``. Residents of an imported
  household that the file no longer lists are deactivated, never deleted.
* Every imported household gets a zero :class:`HouseholdBalance` row if it has none; an
  existing balance is never touched (the points ledger owns it).

Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.archive.load import Archive, HouseholdSpec, MemberSpec, Places
from engine.errors import NotFound
from engine.store.models import Household, HouseholdBalance, Place, Resident
from engine.store.org_repo import Changes
from engine.timeutil import require_aware

CHUNK = 500  # households per round trip (and per progress step); keeps IN lists short
RESIDENT_COLUMNS = ("name", "relation", "gender", "birth_year", "id_number", "phone")


class HouseholdNotFound(NotFound):
    pass


@dataclass
class ArchiveImport:
    households: Changes = field(default_factory=Changes)
    residents: Changes = field(default_factory=Changes)
    balances_added: int = 0

    @property
    def changed(self) -> bool:
        counts = (self.households, self.residents)
        return any(c.added or c.updated or c.deactivated for c in counts) or bool(self.balances_added)


def known_places(session: Session) -> Places:
    """The active places of the org chart in the database, to check an archive against."""
    return Places.of(session.scalars(select(Place).where(Place.active)))


def apply_archive(
    session: Session, archive: Archive, at: datetime, on_progress: Callable[[int], None] | None = None
) -> ArchiveImport:
    """Make the database's households named in ``archive`` equal to it; ``at`` stamps what changed.

    ``on_progress(n)`` is called after each ``n`` households written."""
    at = require_aware(at)
    result = ArchiveImport()
    for chunk in _chunks(archive.households, CHUNK):
        _apply_chunk(session, chunk, at, result)
        if on_progress is not None:
            on_progress(len(chunk))
    return result


def _chunks(items: tuple[HouseholdSpec, ...], size: int) -> Iterator[tuple[HouseholdSpec, ...]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply_chunk(session: Session, chunk: tuple[HouseholdSpec, ...], at: datetime, result: ArchiveImport) -> None:
    ids = [h.id for h in chunk]
    households = {h.id: h for h in session.scalars(select(Household).where(Household.id.in_(ids)))}
    residents: dict[str, list[Resident]] = {}
    for row in session.scalars(select(Resident).where(Resident.household_id.in_(ids)).order_by(Resident.id)):
        residents.setdefault(row.household_id, []).append(row)
    new_households: list[dict[str, Any]] = []
    new_residents: list[dict[str, Any]] = []
    for spec in chunk:
        members_changed = _sync_members(spec, residents.get(spec.id, []), new_residents, result.residents)
        row = households.get(spec.id)
        if row is None:
            new_households.append({"id": spec.id, **_household_values(spec), "updated_at": at})
            result.households.added += 1
        elif _update(row, _household_values(spec)) or members_changed:
            row.updated_at = at
            result.households.updated += 1
    _insert(session, Household, new_households)
    _insert(session, Resident, new_residents)
    result.balances_added += _add_balances(session, ids)


def _add_balances(session: Session, ids: list[str]) -> int:
    """A zero balance for each household that has none; existing balances stay as they are."""
    have = set(session.scalars(select(HouseholdBalance.household_id).where(HouseholdBalance.household_id.in_(ids))))
    zero = {"earned": 0, "redeemed": 0, "refunded": 0, "balance": 0}
    rows = [{"household_id": i, **zero} for i in ids if i not in have]
    _insert(session, HouseholdBalance, rows)
    return len(rows)


def _insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model.__table__), rows)  # Core: one batch, whichever values are None


def _household_values(spec: HouseholdSpec) -> dict[str, Any]:
    return {
        "village_id": spec.village_id,
        "group_id": spec.group_id,
        "grid_id": spec.grid_id,
        "head_name": spec.head.name,
        "address": spec.address,
        "members": len(spec.members),
        "active": True,
    }


def _member_values(member: MemberSpec) -> dict[str, Any]:
    return {name: getattr(member, name) for name in RESIDENT_COLUMNS} | {"active": True}


def _update(row: Any, wanted: dict[str, Any]) -> bool:
    changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
    for name, value in changed.items():
        setattr(row, name, value)
    return bool(changed)


def _sync_members(
    spec: HouseholdSpec, existing: list[Resident], new_rows: list[dict[str, Any]], changes: Changes
) -> bool:
    """Match, update, add and deactivate one household's residents; True if any of them changed."""
    before = (changes.added, changes.updated, changes.deactivated)
    matched = _match(spec.members, existing)
    next_number = max((_number(r.id) for r in existing), default=0) + 1
    for member, row in zip(spec.members, matched, strict=True):
        if row is None:
            new_rows.append({"id": f"{spec.id}-{next_number}", "household_id": spec.id, **_member_values(member)})
            next_number += 1
            changes.added += 1
        elif _update(row, _member_values(member)):
            changes.updated += 1
    kept = {r.id for r in matched if r is not None}
    for row in existing:
        if row.id not in kept and row.active:
            row.active = False
            changes.deactivated += 1
    return before != (changes.added, changes.updated, changes.deactivated)


def _match(members: tuple[MemberSpec, ...], existing: list[Resident]) -> list[Resident | None]:
    """Each member's existing row: first by ID number, then by name and birth year (an active row first)."""
    by_id = {r.id_number: r for r in existing if r.id_number}
    out: list[Resident | None] = [by_id.get(m.id_number) if m.id_number else None for m in members]
    taken = {r.id for r in out if r is not None}
    by_key: dict[tuple[str, int | None], Resident] = {}
    for r in sorted(existing, key=lambda r: r.active):  # active rows last, so they win
        if r.id not in taken:
            by_key[(r.name, r.birth_year)] = r
    for i, member in enumerate(members):
        if out[i] is None:
            out[i] = by_key.pop((member.name, member.birth_year), None)
    return out


def _number(resident_id: str) -> int:
    tail = resident_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdecimal() else 0

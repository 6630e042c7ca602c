"""Use cases: the household archive (户档) and the points ledger and store (积分, 积分超市).

Each takes plain values (household ids, rule and goods codes, entry numbers, texts, dates, aware datetimes)
and returns plain values: the dicts that ``gridflow archive … --json`` and ``gridflow points … --json``
print (ISO times), or a frozen dataclass of such values (:class:`ArchiveReport`). A write acts now, or at a
past ``at`` (never a future one, :func:`gridflow.app.base.not_after_now`).

Personal data is masked with :mod:`engine.archive.mask`: ID numbers and phones are whole only when asked
for (``full``), allowed by the setting ``archive_show_full`` and — for a signed-in ``viewer`` — held by a
role that sees personal data (:mod:`engine.access`). A viewer sees only the households inside their scope.

What a person types is checked here, for every face: free text with :func:`engine.text.clean_text` (evidence,
reasons and notes up to :data:`MAX_NOTE` characters, several lines; a form's or a till's key up to
:data:`MAX_KEY`, one line), entry and redemption numbers from 1 to :data:`engine.text.MAX_ID`, a list's
``limit``; quantities by the store (:mod:`engine.points.store`), days and times by the ledger's dating window,
counted from the clock (:func:`engine.points.ledger.dating_window`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from engine.errors import NotFound, PermissionDenied
from engine.store.models import Household, Person, Place, PointsApproval, PointsEntry, Redemption, Resident
from engine.text import MAX_ID, clean_text, optional_text, whole_number
from gridflow import present
from gridflow.app.base import Base, not_after_now
from gridflow.lazy import lazy_module

if TYPE_CHECKING:
    from engine.access import Viewer

# Loaded by the use cases that need them, not by every command that builds the application.
archive_load = lazy_module("engine.archive.load")
archive_store = lazy_module("engine.archive.store")
mask = lazy_module("engine.archive.mask")
access = lazy_module("engine.access")
jobs = lazy_module("engine.jobs")
ledger = lazy_module("engine.points.ledger")
store = lazy_module("engine.points.store")
runs = lazy_module("engine.scoring.runs")

Progress = Callable[[int, int], None]  # (households just written, households in the file); first (0, total)

MAX_NOTE = 500  # evidence, reasons, notes (the API's bound of evidence)
MAX_KEY = 200  # a form's or a till's key as typed (stored cut to 100, as before); the Idempotency-Key's column
MAX_LIST = 10_000  # rows of one list
MAX_HOUSEHOLDS = 100_000  # households of one list (0: all)


def _key(key: str | None) -> str | None:
    return optional_text(key, "key", MAX_KEY)


def _number(value: int, what: str, hint: str) -> int:
    return whole_number(value, what, 1, MAX_ID, f"; {hint}")


FULL_OFF = (
    "--full is off: the setting archive_show_full is false, so ID numbers and phones are shown "
    "masked only; an administrator may set GRIDFLOW_ARCHIVE_SHOW_FULL=true "
    "(or archive_show_full: true in config/gridflow.yaml)"
)


@dataclass(frozen=True)
class ArchiveReport:
    """What ``archive import`` checked and wrote. ``held``: with ``if_empty``, the households the archive
    holds already (the file was not read); ``changes`` holds ``households`` and ``residents`` (each
    ``added``, ``updated``, ``deactivated``) and ``balances_added``, empty unless ``written``."""

    source: str
    households: int = 0
    residents: int = 0
    villages: int = 0
    written: bool = False
    held: int = 0
    changed: bool = False
    changes: dict[str, Any] = field(default_factory=dict)


class PointsUseCases(Base):
    """The household archive and the points ledger and store."""

    # -- the archive -------------------------------------------------------------------------------

    def import_archive(
        self, path: Path | str, *, dry_run: bool = False, if_empty: bool = False, on_progress: Progress | None = None
    ) -> ArchiveReport:
        """Check an archive file (CSV or YAML) against the org chart and import it; any problem: nothing changes."""
        year = self.clock().astimezone(self.tz).year
        with self.transaction(write=not dry_run) as session:
            if if_empty and (held := session.scalar(select(func.count()).select_from(Household))):
                return ArchiveReport(str(path), held=held)
            archive = archive_load.load_archive(path, archive_store.known_places(session), year)
            checked = ArchiveReport(
                archive.source, len(archive.households), archive.residents, len(archive.villages), written=False
            )
            if dry_run:
                return checked
            total = len(archive.households)
            step = None if on_progress is None else (lambda n: on_progress(n, total))
            if on_progress is not None:
                on_progress(0, total)
            result = archive_store.apply_archive(session, archive, self.clock(), step)
        changes = {
            "households": _changes(result.households),
            "residents": _changes(result.residents),
            "balances_added": result.balances_added,
        }
        return ArchiveReport(
            checked.source,
            checked.households,
            checked.residents,
            checked.villages,
            written=True,
            changed=result.changed,
            changes=changes,
        )

    def list_households(
        self, *, village: str | None = None, grid: str | None = None, limit: int = 50, viewer: Viewer | None = None
    ) -> dict[str, Any]:
        """Active households by id (``limit`` 0: all), with their head and members, and how many there are."""
        limit = whole_number(limit, "limit", 0, MAX_HOUSEHOLDS, " (0: all)")
        with self.transaction(write=False) as session:
            where = _filters(session, village, grid)
            if viewer is not None and (seen := _seen_by(session, viewer)) is not None:
                where.append(seen)
            total = session.scalar(select(func.count()).select_from(Household).where(*where)) or 0
            stmt = select(Household).where(*where).order_by(Household.id)
            rows = list(session.scalars(stmt.limit(limit) if limit else stmt))
            names = _place_names(session)
            return {"households": [_household_dict(h, names) for h in rows], "total": total}

    def show_household(self, household_id: str, *, full: bool = False, viewer: Viewer | None = None) -> dict[str, Any]:
        """One household and its residents; ID numbers and phones masked unless ``full`` is allowed."""
        if full and not self.settings.archive_show_full:
            raise PermissionDenied(FULL_OFF)
        if full and viewer is not None and not viewer.sees_personal_data:
            raise PermissionDenied(
                f"{viewer.name} ({viewer.person_id}) may not see whole ID numbers and phones: "
                f"only {', '.join(sorted(access.SEES_PERSONAL_DATA))} may"
            )
        with self.transaction(write=False) as session:
            row = session.get(Household, household_id)
            if row is None or (viewer is not None and not _sees(session, viewer, row)):
                raise archive_store.HouseholdNotFound(
                    f"no household {household_id!r}; `gridflow archive list` lists them"
                )
            residents = session.scalars(
                select(Resident)
                .where(Resident.household_id == household_id)
                .order_by(Resident.active.desc(), Resident.id)
            )
            data = _household_dict(row, _place_names(session))
            data["residents"] = [_resident_dict(r, full) for r in residents]
        data["masked"] = not full
        return data

    # -- the ledger ----------------------------------------------------------------------------------

    def record_points(
        self,
        household_id: str,
        rule: str,
        *,
        actor: str,
        on: date | None = None,
        evidence: str | None = None,
        case: str | None = None,
        key: str | None = None,
        at: datetime | None = None,
        viewer: Viewer | None = None,
    ) -> dict[str, Any]:
        """Record a rule's points for a household (日记录), on the day of the deed (default: today); the same
        ``key`` records once; a rule that needs approval waits for a second person. With ``viewer`` (the API),
        a case given as evidence must be one they can see: another grid's case does not exist for them."""
        evidence = optional_text(evidence, "evidence", MAX_NOTE, multiline=True)
        key = _key(key)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        rules = self.points_rules()
        with self.transaction() as session:
            if viewer is not None and case:
                _case_in_scope(session, viewer, case)
            done = ledger.record(
                session,
                household_id,
                rule,
                actor,
                on or when.astimezone(self.tz).date(),
                when,
                rules,
                self.tz,
                evidence,
                case,
                key,
                now=now,
            )
            return {
                "entry": _entry_dict(done.entry, session.get(PointsApproval, done.entry.id)),
                "label": rules.rules[rule].label,
                "created": done.created,
                "pending": done.pending,
                "balance": ledger.balance_of(session, household_id).balance,
            }

    def approve_points(
        self, entry_id: int, *, actor: str, approved: bool = True, note: str | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """A second person approves (or rejects) an entry whose rule needs it; once, never its recorder."""
        entry_id = _number(entry_id, "entry", "`gridflow points list --pending` shows the entries waiting")
        note = optional_text(note, "note", MAX_NOTE, multiline=True)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        with self.transaction() as session:
            entry = ledger.approve(
                session, entry_id, actor, approved, when, self.points_rules(), note, tz=self.tz, now=now
            )
            return {
                "entry": _entry_dict(entry, session.get(PointsApproval, entry.id)),
                "approved": approved,
                "balance": ledger.balance_of(session, entry.household_id).balance,
            }

    def correct_points(self, entry_id: int, *, actor: str, reason: str, at: datetime | None = None) -> dict[str, Any]:
        """Correct a mistaken award or deduction with a reversing entry (the ledger is never edited)."""
        entry_id = _number(entry_id, "entry", "`gridflow points list --household H` shows the entries")
        reason = clean_text(reason, "reason", MAX_NOTE, multiline=True)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        with self.transaction() as session:
            reversing = ledger.correct(session, entry_id, actor, reason, when, self.points_rules(), tz=self.tz, now=now)
            return {
                "entry": _entry_dict(reversing, None),
                "balance": ledger.balance_of(session, reversing.household_id).balance,
            }

    def list_points(
        self, *, household: str | None = None, pending: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Ledger entries, newest first: of one household, or only those waiting for approval."""
        limit = whole_number(limit, "limit", 1, MAX_LIST)
        with self.transaction(write=False) as session:
            found = ledger.entries(session, household, limit if not pending else 10_000)
            approvals = {
                a.entry_id: a
                for a in session.scalars(
                    select(PointsApproval).where(PointsApproval.entry_id.in_([e.id for e in found]))
                )
            }
            if pending:
                found = [e for e in found if e.needs_approval and e.id not in approvals][:limit]
            return [_entry_dict(e, approvals.get(e.id)) for e in found]

    def points_balance(self, household_id: str) -> dict[str, Any]:
        """A household's redeemable balance: earned − redeemed + refunded."""
        with self.transaction() as session:
            b = ledger.balance_of(session, household_id)
            return {
                "household": household_id,
                "head": ledger.household(session, household_id).head_name,
                "earned": b.earned,
                "redeemed": b.redeemed,
                "refunded": b.refunded,
                "balance": b.balance,
            }

    def households_period(self, period: str, *, village: str | None = None) -> list[dict[str, Any]]:
        """The households' scored month, quarter or year: points, ranks, stars, red and black list."""
        with self.transaction(write=False) as session:
            run = runs.current_run(session, runs.period_from_key(period).key)
            if run is None:
                raise NotFound(f"{period} has not been scored; `gridflow score run --period {period}`")
            rows = [r for r in runs.household_scores(session, run) if not village or r.village_id == village]
            names = {h.id: h.head_name for h in session.scalars(select(Household))}
            return [
                {
                    "household": r.household_id,
                    "head": names.get(r.household_id),
                    "village": r.village_id,
                    "points": r.points,
                    "awarded": r.awarded,
                    "deducted": r.deducted,
                    "total": r.total,
                    "rank_village": r.rank_village,
                    "rank_township": r.rank_township,
                    "stars": r.stars,
                    "listed": r.listed,
                }
                for r in rows
            ]

    # -- the store -----------------------------------------------------------------------------------

    def redeem_points(
        self,
        household_id: str,
        items: Sequence[str] | Mapping[str, int],
        *,
        actor: str,
        key: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Take goods (``salt=2`` each, or code → quantity) from the household's village store for points;
        the same ``key`` redeems once. With the receipt's lines (兑换凭证)."""
        key = _key(key)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        lines = store.check_lines(dict(items)) if isinstance(items, Mapping) else store.parse_lines(list(items))
        with self.transaction() as session:
            done, created = store.redeem(session, household_id, lines, actor, when, key)
            balance = ledger.balance_of(session, household_id).balance
            clerk = session.get(Person, done.operator_id)
            head = ledger.household(session, household_id).head_name
            return {
                "redemption": _redemption_dict(done),
                "created": created,
                "balance": balance,
                "receipt": store.receipt(done, balance, head, self.tz, clerk.name if clerk else ""),
            }

    def reverse_redemption(
        self, redemption_id: int, *, actor: str, reason: str, at: datetime | None = None
    ) -> dict[str, Any]:
        """Reverse a redemption once: the goods go back on the shelf, the points back to the household."""
        redemption_id = _number(redemption_id, "redemption", "its number is on the receipt")
        reason = clean_text(reason, "reason", MAX_NOTE, multiline=True)
        now = self.clock()
        when = now if at is None else not_after_now(at, now, self.tz)
        with self.transaction() as session:
            done = store.reverse(session, redemption_id, actor, reason, when)
            return {
                "redemption": _redemption_dict(done),
                "balance": ledger.balance_of(session, done.household_id).balance,
            }

    def load_store_goods(self, path: Path | str) -> dict[str, int]:
        """Add goods per village store from a file (config/store.yaml), update names and prices: counts."""
        with self.transaction() as session:
            return dict(store.load_goods(session, path))

    def restock(self, village: str, item: str, quantity: int, *, actor: str) -> dict[str, Any]:
        """Put ``quantity`` of a good on a village store's shelf: the good with its new stock."""
        with self.transaction() as session:
            good = store.restock(session, village, item, quantity, actor)
            return {
                "village": good.village_id,
                "code": good.code,
                "name": good.name,
                "unit": good.unit,
                "price": good.price,
                "stock": good.stock,
            }

    def stock_report(self, *, village: str | None = None, month: str | None = None) -> dict[str, Any]:
        """Goods per store: stock on the shelf and what was redeemed in a month (default this month)."""
        today = self.clock().astimezone(self.tz).date()
        period = runs.period_from_key(month) if month else jobs.period_of("month", today)
        start, end = jobs.bounds(period, self.tz)
        with self.transaction(write=False) as session:
            goods = store.stock_report(session, village, start, end)
            count = session.scalar(
                select(func.count()).select_from(Redemption).where(Redemption.at >= start, Redemption.at < end)
            )
        return {"period": period.key, "redemptions": count or 0, "goods": goods}


# -- plain values ----------------------------------------------------------------------------------------


def _changes(counts: Any) -> dict[str, int]:
    return {"added": counts.added, "updated": counts.updated, "deactivated": counts.deactivated}


def _place_names(session: Session) -> dict[str, str]:
    return {place: name for place, name in session.execute(select(Place.id, Place.name))}


def _filters(session: Session, village: str | None, grid: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Household.active]
    if village is not None:
        found = session.scalar(
            select(Place.id).where(Place.kind == "village", or_(Place.id == village, Place.name == village))
        )
        if found is None:
            raise NotFound(f"no village {village!r}; `gridflow org show` lists them")
        where.append(Household.village_id == found)
    if grid is not None:
        if session.get(Place, grid) is None:
            raise NotFound(f"no grid cell {grid!r}; `gridflow org show` lists them")
        where.append(Household.grid_id == grid)
    return where


def _seen_by(session: Session, viewer: Viewer) -> ColumnElement[bool] | None:
    """The households inside ``viewer``'s scope (None: all): of the grids they see; one without a grid, by
    its village."""
    org = ledger.org(session)
    grids = access.grids_seen(org, viewer)
    if grids is None:
        return None
    places = {place for _, place in viewer.roles}
    villages = [p.id for p in org.places.values() if p.kind == "village" and places.intersection(p.scopes)]
    return or_(
        Household.grid_id.in_(sorted(grids)), and_(Household.grid_id.is_(None), Household.village_id.in_(villages))
    )


def _sees(session: Session, viewer: Viewer, home: Household) -> bool:
    org = ledger.org(session)
    if access.grids_seen(org, viewer) is None:
        return True
    place = org.places.get(home.grid_id or home.village_id)
    return place is not None and bool({p for _, p in viewer.roles}.intersection(place.scopes))


def _household_dict(h: Household, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": h.id,
        "village_id": h.village_id,
        "village": names.get(h.village_id, h.village_id),
        "group_id": h.group_id,
        "group": names.get(h.group_id or "", h.group_id),
        "grid": h.grid_id,
        "head": h.head_name,
        "members": h.members,
        "address": h.address,
        "active": h.active,
        "updated_at": present.iso(h.updated_at),
    }


def _resident_dict(r: Resident, full: bool) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "relation": r.relation,
        "gender": r.gender,
        "birth_year": r.birth_year,
        "id_number": r.id_number if full else mask.mask_id_number(r.id_number),
        "phone": r.phone if full else mask.mask_phone(r.phone),
        "active": r.active,
    }


def _case_in_scope(session: Session, viewer: Viewer, code: str) -> None:
    from engine.scope import current
    from engine.store.models import Case

    grid = session.scalar(select(Case.grid_id).where(Case.code == code))
    if grid is None or not access.sees_grid(current(session), viewer, grid):
        raise NotFound(f"no case {code!r} that you can see; check the code, or list your cases")


def _entry_dict(e: PointsEntry, approval: PointsApproval | None) -> dict[str, Any]:
    return {
        "id": e.id,
        "household": e.household_id,
        "kind": e.kind,
        "rule": e.rule,
        "category": e.category,
        "points": e.points,
        "on": e.on_date,
        "recorded_at": present.iso(e.recorded_at),
        "by": e.recorder_id,
        "evidence": e.evidence,
        "needs_approval": e.needs_approval,
        "approval": None
        if approval is None
        else {"approved": approval.approved, "by": approval.by_id, "at": present.iso(approval.at)},
        "reverses": e.reverses_id,
        "redemption": e.redemption_id,
        "key": e.key,
    }


def _redemption_dict(r: Redemption) -> dict[str, Any]:
    return {
        "id": r.id,
        "household": r.household_id,
        "village": r.village_id,
        "at": present.iso(r.at),
        "by": r.operator_id,
        "total": r.total,
        "lines": [dict(line) for line in r.lines],
        "key": r.key,
        "reversed_at": present.iso(r.reversed_at),
        "reversed_by": r.reversed_by,
        "reason": r.reverse_reason,
    }

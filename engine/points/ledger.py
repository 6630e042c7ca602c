"""The points ledger (日记录): record, approve, correct — append-only, in the caller's transaction.

- :func:`record` checks the household, the rule, the recorder's role over the household's grid,
  the day (not in the future, not before the dating window) and the rule's limit per period, then
  appends one entry. Its ``key`` (given by the form, or derived from what was submitted) makes a
  double submission record once: the second returns the first entry.
- An entry whose rule needs approval counts only once a second person approves it
  (:func:`approve`); the decision is its own row, the entry never changes.
- :func:`correct` appends the reversing entry of a mistaken one (never an edit).

**The dating window** (:func:`dating_window`): the day of a deed and the time an entry, an approval or
a correction is recorded lie in the open month — this month, and the month before until its scoring
run freezes it (``backdate: open_month`` in ``config/points.yaml``, the default) — or in this month only
(``backdate: current_month``). A limit counts per period by the day of the deed, so without the window
every past month would give a fresh limit; and a month that has been scored (a ``score_run`` of it, its
quarter or its year) keeps its limits and figures. "Now" is the clock (``now``), not ``at``: a write
dated in the past does not move the window with it.

The redeemable balance (``household_balance``) moves with the ledger in the same transaction:
awards add to it, their corrections take it back, redemptions spend it (:mod:`engine.points.store`).
Deductions (扣分) lower a household's standing — its points in the month, its rank, the black list —
but not what it can spend: balance = earned − redeemed + refunded, never negative.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from engine.errors import CommandRejected, NotFound, PermissionDenied
from engine.jobs import period_of
from engine.points.rules import PointsRules, Rule
from engine.scope import OrgSnapshot, snapshot
from engine.store.models import (
    Case,
    Household,
    HouseholdBalance,
    OrgMeta,
    PointsApproval,
    PointsEntry,
    ScoreRun,
)
from engine.store.models import (
    PointsRules as RulesRow,
)
from engine.timeutil import DEFAULT_TZ, require_aware

KEY_LENGTH = 100  # points_entry.key


class PointsRejected(CommandRejected):
    """A points command that cannot be taken; nothing was changed."""


@dataclass(frozen=True)
class Recorded:
    entry: PointsEntry
    created: bool  # False: the same form was submitted before; this is that entry
    pending: bool  # waiting for a second person's approval


# -- the dating window ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The days an entry may be dated on now: ``start`` to ``today``, both included (local dates)."""

    start: date
    today: date
    backdate: str  # the setting of the points rules
    rules_file: str
    closed_month: str | None = None  # the month before, when a scoring run has frozen it
    closed_by: str | None = None  # the period of that run: the month, its quarter or its year

    def check(self, day: date, what: str, shown: str | None = None) -> None:
        """Refuse ``day`` before the window: ``what`` names it (e.g. ``the day of the deed (on)``)."""
        if day >= self.start:
            return
        month = f"{day:%Y-%m}" if day.year >= 1000 else day.isoformat()[:7]
        if month == self.closed_month:
            why = (
                f"{what} {shown or day} falls in {month}: {self.closed_by} has been scored "
                f"(`gridflow score history --period {self.closed_by}`), so its limits and figures are frozen"
            )
        else:
            why = f"{what} {shown or day} is outside the days points may be dated on now"
        raise PointsRejected(
            f"{why}; points may be dated {self.start} to {self.today} ({self._allowed()}; backdate: {self.backdate} "
            f"in {self.rules_file}). Record a deed of an earlier day in the open month (leave the day out) and say "
            "in the evidence when it happened"
        )

    def _allowed(self) -> str:
        if self.backdate == "current_month":
            return "this month only"
        if self.closed_month is not None:
            return f"this month; {self.closed_month} is scored"
        return f"this month, and {self.start:%Y-%m} until it is scored"


def scored(session: Session, day: date) -> str | None:
    """The period of a scoring run that covers ``day`` (its month, quarter or year), or None."""
    keys = [period_of(kind, day).key for kind in ("month", "quarter", "year")]  # type: ignore[arg-type]
    return session.scalar(select(ScoreRun.period).where(ScoreRun.period.in_(keys)).order_by(ScoreRun.id).limit(1))


def dating_window(session: Session, now: datetime, tz: ZoneInfo, rules: PointsRules) -> Window:
    """The days points may be dated on at ``now`` (the clock): see the module's docstring."""
    today = require_aware(now).astimezone(tz).date()
    start = today.replace(day=1)
    file = rules.source_file or "config/points.yaml"
    if rules.backdate != "open_month":
        return Window(start, today, rules.backdate, file)
    before = (start - timedelta(days=1)).replace(day=1)
    closed_by = scored(session, before)
    if closed_by is not None:
        return Window(start, today, rules.backdate, file, f"{before:%Y-%m}", closed_by)
    return Window(before, today, rules.backdate, file)


def check_time(
    session: Session, at: datetime, now: datetime | None, tz: ZoneInfo, rules: PointsRules, what: str
) -> Window:
    """Refuse a write dated ``at`` before the window of ``now`` (default ``at``); the window."""
    window = dating_window(session, now or at, tz, rules)
    local = at.astimezone(tz)
    window.check(local.date(), what, f"{local:%Y-%m-%d %H:%M}")
    return window


# -- the rules, by version -------------------------------------------------------------------------


def store_rules(session: Session, rules: PointsRules, at: datetime) -> None:
    """Keep this version's text; refuse a changed text under a version already used."""
    row = session.get(RulesRow, rules.version)
    if row is None:
        session.add(
            RulesRow(version=rules.version, source_hash=rules.source_hash, source_text=rules.source_text, stored_at=at)
        )
        session.flush()
    elif row.source_hash != rules.source_hash:
        raise PointsRejected(
            f"{rules.source_file or 'the points rules'}: version {rules.version} was already used with different "
            "rules; bump version: so that every entry keeps saying which rules it was recorded under"
        )


# -- who and where ---------------------------------------------------------------------------------


def org(session: Session) -> OrgSnapshot:
    return snapshot(session, session.scalar(select(OrgMeta.token).where(OrgMeta.id == 1)))


def household(session: Session, household_id: str, lock: bool = False) -> Household:
    stmt = select(Household).where(Household.id == household_id)
    if lock:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"no household {household_id!r}; `gridflow archive list` shows the households")
    if not found.active:
        raise PointsRejected(f"household {household_id} is no longer in the archive")
    return found


def require_role(
    org_: OrgSnapshot, person_id: str, place_id: str, roles: tuple[str, ...], action: str, within: bool = False
) -> None:
    """``person_id`` holds one of ``roles`` over ``place_id`` (or above it); with ``within``, also on a
    place inside it (a grid worker of one of the village's grids works at the village's store)."""
    person = org_.people.get(person_id)
    if person is None or not person.active:
        raise NotFound(f"no person {person_id!r} in the org chart; `gridflow org show` lists the people")
    place = org_.places.get(place_id)
    held = org_.roles_over(person_id, place) if place is not None else set()
    if within:
        held |= {role for role, at in org_.roles.get(person_id, ()) if place_id in org_.places[at].scopes}
    if not held & set(roles):
        raise PermissionDenied(
            f"{person.name} ({person_id}) may not {action} here ({place_id}): needs {' or '.join(roles)}; "
            f"has {', '.join(sorted(held)) or 'no role there'}"
        )


# -- record, approve, correct --------------------------------------------------------------------


def record(
    session: Session,
    household_id: str,
    rule_code: str,
    recorder_id: str,
    on_date: date,
    at: datetime,
    rules: PointsRules,
    tz: ZoneInfo,
    evidence: str | None = None,
    case_code: str | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Record ``rule_code`` for a household at ``at``, the deed done ``on_date``; ``now`` (default ``at``) is
    the clock's time, which the dating window is counted from."""
    at = require_aware(at)
    rule = rules.rule(rule_code)
    key = (key or derived_key(household_id, rule_code, on_date, recorder_id, evidence))[:KEY_LENGTH]
    existing = session.scalar(select(PointsEntry).where(PointsEntry.key == key))
    if existing is not None:
        if (existing.household_id, existing.rule) != (household_id, rule_code):
            raise PointsRejected(f"key {key!r} was used for entry #{existing.id} of another household or rule")
        return Recorded(existing, created=False, pending=_pending(session, existing))
    home = household(session, household_id, lock=True)  # serialises limit checks of one household
    require_role(org(session), recorder_id, home.grid_id or home.village_id, rule.roles, f"record {rule.label}")
    today = at.astimezone(tz).date()
    if on_date > today:
        raise PointsRejected(f"{on_date} is in the future (today is {today}); record a deed on or after its day")
    window = check_time(session, at, now, tz, rules, "the time it is recorded (at)")
    window.check(on_date, "the day of the deed (on)")
    _check_limit(session, home.id, rule, on_date)
    case_id = None
    if case_code:
        case_id = session.scalar(select(Case.id).where(Case.code == case_code))
        if case_id is None:
            raise NotFound(f"no case {case_code!r}; `gridflow case list` shows the cases")
    store_rules(session, rules, at)
    entry = PointsEntry(
        household_id=home.id,
        kind="award" if rule.points > 0 else "deduct",
        rule=rule.code,
        rules_version=rules.version,
        category=rule.category,
        points=rule.points,
        on_date=on_date.isoformat(),
        recorded_at=at,
        effective_at=None if rule.approval else at,
        recorder_id=recorder_id,
        evidence=(evidence or "").strip() or None,
        case_id=case_id,
        needs_approval=rule.approval,
        key=key,
    )
    session.add(entry)
    session.flush()
    ensure_balance(session, home.id)
    if not rule.approval:
        _earn(session, home.id, entry.points)
    return Recorded(entry, created=True, pending=rule.approval)


def derived_key(household_id: str, rule: str, on_date: date, recorder: str, evidence: str | None) -> str:
    """The same form submitted twice gives the same key."""
    digest = hashlib.sha256(f"{household_id}|{rule}|{on_date}|{recorder}|{(evidence or '').strip()}".encode())
    return f"form:{digest.hexdigest()[:40]}"


def _check_limit(session: Session, household_id: str, rule: Rule, on_date: date) -> None:
    """Awards and deductions of this rule in the limit's period, less those corrected or rejected (a
    correction frees its slot; the correction itself takes none). Probes of unique keys per entry,
    not ``NOT IN`` over the whole ledger."""
    if rule.limit is None:
        return
    period = period_of(rule.limit.period, on_date)  # type: ignore[arg-type]
    entry, correction, approval = PointsEntry.__table__, PointsEntry.__table__.alias("correction"), PointsApproval
    corrected = select(correction.c.id).where(correction.c.reverses_id == entry.c.id).exists()
    rejected = select(approval.entry_id).where(approval.entry_id == entry.c.id, approval.approved.is_(False)).exists()
    used = session.scalar(
        select(func.count())
        .select_from(entry)
        .where(
            entry.c.household_id == household_id,
            entry.c.rule == rule.code,
            entry.c.kind.in_(("award", "deduct")),
            entry.c.on_date >= period.start.isoformat(),
            entry.c.on_date < period.end.isoformat(),
            ~corrected,
            or_(entry.c.needs_approval.is_(False), ~rejected),
        )
    )
    if used >= rule.limit.times:
        raise PointsRejected(
            f"{rule.label} ({rule.code}) may be recorded at most {rule.limit.times} time(s) per {rule.limit.period} "
            f"for a household; {household_id} has {used} in {period.key} already"
        )


def _pending(session: Session, entry: PointsEntry) -> bool:
    return entry.needs_approval and session.get(PointsApproval, entry.id) is None


def _earn(session: Session, household_id: str, points: int) -> None:
    """An award counts (or a correction takes one back): the redeemable balance moves with it."""
    if points == 0:
        return
    ensure_balance(session, household_id)
    if points > 0:
        session.execute(
            update(HouseholdBalance)
            .where(HouseholdBalance.household_id == household_id)
            .values(earned=HouseholdBalance.earned + points, balance=HouseholdBalance.balance + points)
        )


def ensure_balance(session: Session, household_id: str) -> None:
    if session.get(HouseholdBalance, household_id) is None:
        session.execute(
            insert(HouseholdBalance).values(household_id=household_id, earned=0, redeemed=0, refunded=0, balance=0)
        )


def approve(
    session: Session,
    entry_id: int,
    approver_id: str,
    approved: bool,
    at: datetime,
    rules: PointsRules,
    note: str | None = None,
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> PointsEntry:
    """The second person's decision on an entry that needs one: once, never by the recorder. An approved
    entry counts from ``at``, so ``at`` lies in the dating window of ``now`` (default ``at``) in ``tz``."""
    at = require_aware(at)
    entry = _entry(session, entry_id)
    if not entry.needs_approval:
        raise PointsRejected(f"entry #{entry_id} needs no approval (rule {entry.rule}); it counts already")
    if session.get(PointsApproval, entry_id) is not None:
        raise PointsRejected(f"entry #{entry_id} was already decided")
    if approver_id == entry.recorder_id:
        raise PointsRejected(f"entry #{entry_id} needs a second person: {approver_id} recorded it")
    home = household(session, entry.household_id, lock=True)
    require_role(org(session), approver_id, home.grid_id or home.village_id, rules.approvers, "approve points")
    check_time(session, at, now, tz or DEFAULT_TZ, rules, "the time of the decision (at)")
    session.add(PointsApproval(entry_id=entry_id, approved=approved, by_id=approver_id, at=at, note=note))
    session.flush()
    if approved:
        _earn(session, home.id, entry.points)
    return entry


def _entry(session: Session, entry_id: int) -> PointsEntry:
    entry = session.get(PointsEntry, entry_id)
    if entry is None:
        raise NotFound(f"no points entry #{entry_id}; `gridflow points list --household H` shows the entries")
    return entry


def counts(session: Session, entry: PointsEntry) -> bool:
    """Whether an award or deduction counts: no approval needed, or approved."""
    if not entry.needs_approval:
        return True
    decision = session.get(PointsApproval, entry.id)
    return decision is not None and decision.approved


def correct(
    session: Session,
    entry_id: int,
    by_id: str,
    reason: str,
    at: datetime,
    rules: PointsRules,
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> PointsEntry:
    """Append the reversing entry of a mistaken award or deduction; it counts from ``at``, which lies in
    the dating window of ``now`` (default ``at``) in ``tz``."""
    at = require_aware(at)
    if not reason.strip():
        raise PointsRejected("say why (--reason): a correction needs a reason")
    entry = _entry(session, entry_id)
    if entry.kind not in ("award", "deduct"):
        raise PointsRejected(
            f"entry #{entry_id} is a {entry.kind}; only awards and deductions are corrected "
            "(a redemption is reversed with `gridflow points reverse`)"
        )
    if session.scalar(select(PointsEntry.id).where(PointsEntry.reverses_id == entry_id)) is not None:
        raise PointsRejected(f"entry #{entry_id} was corrected already")
    if entry.needs_approval and session.get(PointsApproval, entry_id) is None:
        raise PointsRejected(
            f"entry #{entry_id} is waiting for approval: reject it instead (`gridflow points approve "
            f"{entry_id} --reject`)"
        )
    if not counts(session, entry):
        raise PointsRejected(f"entry #{entry_id} was rejected and never counted; nothing to correct")
    home = household(session, entry.household_id, lock=True)
    rule = rules.rules.get(entry.rule or "")
    roles = rule.roles if rule else ("village_secretary", "center")
    require_role(org(session), by_id, home.grid_id or home.village_id, tuple({*roles, *rules.approvers}), "correct")
    check_time(session, at, now, tz or DEFAULT_TZ, rules, "the time of the correction (at)")
    if entry.points > 0:
        ensure_balance(session, home.id)
        balance = session.get(HouseholdBalance, home.id)
        if balance.balance < entry.points:
            raise PointsRejected(
                f"household {home.id} has {balance.balance} points left and has spent the {entry.points} this entry "
                "gave; reverse a redemption first (`gridflow points reverse`), then correct"
            )
    reversing = PointsEntry(
        household_id=home.id,
        kind="correct",
        rule=entry.rule,
        rules_version=entry.rules_version,
        category=entry.category,
        points=-entry.points,
        on_date=entry.on_date,  # the deed it corrects; it counts when made (effective_at)
        recorded_at=at,
        effective_at=at,
        recorder_id=by_id,
        evidence=f"更正 #{entry.id}: {reason.strip()}",
        case_id=entry.case_id,
        reverses_id=entry.id,
        needs_approval=False,
        key=f"correct:{entry.id}",
    )
    session.add(reversing)
    session.flush()
    if entry.points > 0:
        session.execute(
            update(HouseholdBalance)
            .where(HouseholdBalance.household_id == home.id, HouseholdBalance.balance >= entry.points)
            .values(earned=HouseholdBalance.earned - entry.points, balance=HouseholdBalance.balance - entry.points)
        )
    return reversing


# -- reading -------------------------------------------------------------------------------------


def entries(session: Session, household_id: str | None = None, limit: int = 50) -> list[PointsEntry]:
    stmt = select(PointsEntry).order_by(PointsEntry.id.desc()).limit(limit)
    if household_id:
        stmt = stmt.where(PointsEntry.household_id == household_id)
    return list(session.scalars(stmt))


def balance_of(session: Session, household_id: str) -> HouseholdBalance:
    household(session, household_id)
    ensure_balance(session, household_id)
    row = session.get(HouseholdBalance, household_id)
    assert row is not None
    return row

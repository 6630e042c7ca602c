"""SLA clocks and their timers, changed in the same transaction as the case step.

Semantics (``../shared/DESIGN.md`` section 5):

- A state with ``sla:`` gets a clock when a case enters it; a workflow with ``case_sla:``
  gives every case one more clock for its whole life. Limits are business time on the
  clock's calendar (``4h`` four working hours, ``2d`` two standard working days).
- The limit of a state: ``limit``, or the shortest of the ``by_category`` and
  ``by_priority`` overrides that apply. The calendar: the state's own, else the
  workflow's ``calendar_by_category`` entry for the case's category (optionally only
  in some months, e.g. the flood season), else the workflow's ``calendar``.
- Leaving a state stops its clock and cancels its pending timers. Entering a state
  marked ``pauses_sla`` pauses every running clock (the consumed business time is
  kept); leaving it resumes the clocks of the state returned to and of the case, and
  lays their timers again from what is left. Any other entry starts a fresh clock.
- An approved extension adds business time to the running clocks of the case.
- Timers carry the clock's ``generation``; laying timers again bumps it, so a stale
  timer that fires anyway is recognised and does nothing (the sweep's fence).

Nothing here reads the clock: ``at`` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from engine.definitions.model import StateDef, WorkflowDef
from engine.durations import Duration, parse_duration
from engine.errors import ConfigError
from engine.store import case_repo
from engine.store.models import SlaClock, SlaTimer

if TYPE_CHECKING:
    from engine.calendar import WorkCalendar

_CLOCK, _TIMER = SlaClock.__table__, SlaTimer.__table__
_OPEN = select(_CLOCK).where(_CLOCK.c.case_id == bindparam("case"), _CLOCK.c.status != "stopped").order_by(_CLOCK.c.id)
_INSERT_CLOCK = insert(_CLOCK).returning(_CLOCK.c.id)
_CLOCK_CHANGES = (
    "limit_s",
    "consumed_s",
    "status",
    "generation",
    "segment_start",
    "stopped_at",
    "due_at",
    "estimated",
    "breached_at",
    "outcome",
    "history",
    "stopped_by",
)
_SAVE_CLOCK = (
    update(_CLOCK).where(_CLOCK.c.id == bindparam("_id")).values({name: bindparam(name) for name in _CLOCK_CHANGES})
)
_CANCEL = (
    update(_TIMER)
    .where(_TIMER.c.clock_id == bindparam("_clock"), _TIMER.c.status == "pending")
    .values(status="cancelled", note=bindparam("_why"))
)
_INSERT_TIMER = insert(_TIMER)
_FIRED = select(_TIMER.c.kind, _TIMER.c.level).where(
    _TIMER.c.clock_id == bindparam("clock"), _TIMER.c.status == "fired"
)
DEFAULT_CALENDAR = "township"
DEFAULT_REMINDER_ROLES = ("assignee", "grid_worker")
DEFAULT_BREACH_ROLES = ("assignee", "grid_worker", "center")


@dataclass(frozen=True)
class Reminder:
    percent: int | None  # of the limit, 1..99
    before_s: int | None  # or a lead time before the deadline, business seconds
    notify: tuple[str, ...]
    template: str = "sla_reminder"

    def consumed_at(self, limit_s: int) -> int:
        """Business seconds into the clock at which this reminder is due (exact: whole percents)."""
        if self.percent is not None:
            return limit_s * self.percent // 100
        return max(0, limit_s - (self.before_s or 0))


@dataclass(frozen=True)
class Level:
    after_s: int  # business seconds after the breach
    notify: tuple[str, ...]
    mark: str | None
    template: str = "sla_escalated"


@dataclass(frozen=True)
class Policy:
    """A clock's rules, resolved when it starts and stored on it."""

    calendar: str
    limit_s: int
    limit_text: str
    reminders: tuple[Reminder, ...]
    breach_notify: tuple[str, ...]
    ladder: tuple[Level, ...]

    def to_json(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, built directly (asdict deep-copies every leaf: a fifth of a
        step's own CPU on the bench)."""
        return {
            "calendar": self.calendar,
            "limit_s": self.limit_s,
            "limit_text": self.limit_text,
            "reminders": tuple(
                {"percent": r.percent, "before_s": r.before_s, "notify": r.notify, "template": r.template}
                for r in self.reminders
            ),
            "breach_notify": self.breach_notify,
            "ladder": tuple(
                {"after_s": lv.after_s, "notify": lv.notify, "mark": lv.mark, "template": lv.template}
                for lv in self.ladder
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        return cls(
            calendar=data["calendar"],
            limit_s=data["limit_s"],
            limit_text=data["limit_text"],
            reminders=tuple(
                Reminder(r["percent"], r["before_s"], tuple(r["notify"]), r["template"]) for r in data["reminders"]
            ),
            breach_notify=tuple(data["breach_notify"]),
            ladder=tuple(
                Level(lv["after_s"], tuple(lv["notify"]), lv["mark"], lv["template"]) for lv in data["ladder"]
            ),
        )


@dataclass(frozen=True)
class CaseFacts:
    """What the SLA rules need to know about a case."""

    id: int
    category: str | None
    priority: str | None
    assignee_id: str | None = None  # the handler a state clock is attributed to in the scores


# -- policy ---------------------------------------------------------------------------


def business(duration: Duration, calendar: WorkCalendar) -> int:
    """A YAML duration as business seconds on ``calendar``."""
    if duration.unit == "d":
        return int(duration.amount * calendar.day_length.total_seconds())
    return duration.amount * (60 if duration.unit == "m" else 3600)


def calendar_for(definition: WorkflowDef, spec: Mapping[str, Any], case: CaseFacts, local_month: int) -> str:
    if spec.get("calendar"):
        return str(spec["calendar"])
    override = definition.extras.get("calendar_by_category", {}).get(case.category or "")
    if isinstance(override, str):
        return override
    if isinstance(override, Mapping) and local_month in override.get("months", range(1, 13)):
        return str(override["calendar"])
    return str(definition.extras.get("calendar", DEFAULT_CALENDAR))


def limit_for(spec: Mapping[str, Any], case: CaseFacts, calendar: WorkCalendar) -> str:
    """The state's limit, or the shortest (in business time) override for the case's category and priority."""
    overrides = [
        spec.get("by_category", {}).get(case.category or ""),
        spec.get("by_priority", {}).get(case.priority or ""),
    ]
    found = [o for o in overrides if o]
    return min(found, key=lambda text: business(parse_duration(text), calendar)) if found else str(spec["limit"])


def resolve(
    definition: WorkflowDef,
    spec: Mapping[str, Any],
    case: CaseFacts,
    calendars: Mapping[str, WorkCalendar],
    local_month: int,
) -> Policy:
    name = calendar_for(definition, spec, case, local_month)
    calendar = _calendar(calendars, name)
    limit_text = limit_for(spec, case, calendar)
    limit_s = business(parse_duration(limit_text), calendar)
    reminders = tuple(
        Reminder(
            percent=int(r["at"].rstrip("%")) if "at" in r else None,
            before_s=business(parse_duration(r["before"]), calendar) if "before" in r else None,
            notify=tuple(r.get("notify", DEFAULT_REMINDER_ROLES)),
            template=r.get("template", "sla_reminder"),
        )
        for r in spec.get("reminders", ())
    )
    ladder = tuple(
        Level(
            after_s=0 if lv["after"] == "breach" else business(parse_duration(lv["after"]), calendar),
            notify=tuple(lv["notify"]),
            mark=lv.get("mark"),
            template=lv.get("template", "sla_escalated"),
        )
        for lv in spec.get("escalation", ())
    )
    breach = tuple(spec.get("notify_on_breach", DEFAULT_BREACH_ROLES))
    return Policy(name, limit_s, limit_text, reminders, breach, ladder)


def _calendar(calendars: Mapping[str, WorkCalendar], name: str) -> WorkCalendar:
    try:
        return calendars[name]
    except KeyError:
        known = ", ".join(sorted(calendars)) or "none loaded"
        raise ConfigError(
            f"calendar {name!r} is not defined (known: {known}); add it to config/calendars.yaml"
        ) from None


# -- the clock book of one case ------------------------------------------------------------


class Clocks:
    """The open clocks of one case inside one transaction, and what changes them.

    Clocks are plain rows (Core, no ORM unit of work): a new clock is inserted at once
    (its timers need its id); changes to existing clocks, cancellations and new timers
    are collected and written by :meth:`finish` in three statements.
    """

    def __init__(
        self,
        session: Session,
        case: CaseFacts,
        calendars: Mapping[str, WorkCalendar],
        tz: Any,
        open_rows: list[dict[str, Any]] | None = None,
    ):
        self.session = session
        self.conn = session.connection()
        self.case = case
        self.calendars = calendars
        self.tz = tz
        # the open clocks, when the caller read them with the case (case_repo.load on PostgreSQL)
        self._open: list[Any] | None = None if open_rows is None else [SimpleNamespace(**r) for r in open_rows]
        self._changed: dict[int, Any] = {}
        self._cancel: dict[int, str] = {}
        self._timers: list[dict[str, Any]] = []
        self._new: list[Any] = []  # clocks started in this step: ids -1, -2, … until finish() inserts them

    @property
    def open(self) -> list[Any]:
        if self._open is None:
            rows = case_repo.fetch_dicts(self.conn, _OPEN, {"case": self.case.id})
            self._open = [SimpleNamespace(**row) for row in rows]
        return self._open

    def bind(self, case_id: int) -> None:
        """The case's id, once it is inserted: a report works out its clocks before (so a calendar that
        cannot answer refuses the report before it takes a case number)."""
        self.case = replace(self.case, id=case_id)

    def finish(self) -> None:
        """Write what this step changed: cancellations first, then clocks (changed, then new), then new timers."""
        run = case_repo.execute_rows
        run(self.conn, _CANCEL, [{"_clock": c, "_why": why[:200]} for c, why in self._cancel.items()])
        run(
            self.conn,
            _SAVE_CLOCK,
            [{"_id": c.id, **{name: getattr(c, name) for name in _CLOCK_CHANGES}} for c in self._changed.values()],
        )
        ids = {}
        for clock in self._new:
            clock.case_id = self.case.id
            row = {name: value for name, value in vars(clock).items() if name != "id"}
            ids[clock.id] = clock.id = case_repo.scalar(self.conn, _INSERT_CLOCK, row)
        for timer in self._timers:
            timer["clock_id"] = ids.get(timer["clock_id"], timer["clock_id"])
            timer["case_id"] = self.case.id
            timer["dedupe_key"] = f"{timer['clock_id']}:{timer['generation']}:{timer['kind']}:{timer['level']}"
        run(self.conn, _INSERT_TIMER, self._timers)
        self._changed, self._cancel, self._timers, self._new = {}, {}, [], []

    # -- reacting to a step ------------------------------------------------------------

    def on_report(self, definition: WorkflowDef, at: datetime) -> None:
        self._open = []
        if definition.extras.get("case_sla"):
            self.start(definition, "case", None, definition.extras["case_sla"], at, "the case was reported")
        self.enter(definition, definition.initial, at, "the case was reported")

    def on_step(
        self, definition: WorkflowDef, source: str, dest: str, at: datetime, why: str, trigger: str | None = None
    ) -> None:
        if source == dest:
            return
        states = definition.states
        if states[dest].final:
            for clock in list(self.open):
                self.stop(clock, at, f"{why}; the case is closed", trigger)
            return
        resumed = self._leave(states[source], states[dest], at, why, trigger)
        if dest not in resumed:
            self.enter(definition, dest, at, why)

    def _leave(self, source: StateDef, dest: StateDef, at: datetime, why: str, trigger: str | None) -> set[str | None]:
        resumed: set[str | None] = set()
        for clock in list(self.open):
            if clock.status == "running" and dest.pauses_sla:
                self.pause(clock, at, f"{why}: {dest.name} pauses the clock")
            elif clock.status == "running" and clock.scope == "state":
                self.stop(clock, at, why, trigger)
            elif clock.status == "paused" and source.pauses_sla and not dest.pauses_sla:
                if clock.scope == "case" or clock.state == dest.name:
                    self.resume(clock, at, why)
                    resumed.add(clock.state)
                else:
                    self.stop(clock, at, f"{why}; the case does not return to {clock.state}", trigger)
        return resumed

    def enter(self, definition: WorkflowDef, state: str, at: datetime, why: str) -> None:
        spec = definition.states[state].sla
        if spec:
            self.start(definition, "state", state, spec, at, why)

    def extend(self, by: Duration, at: datetime, why: str) -> None:
        """An approved extension: more business time on every open clock of the case."""
        for clock in self.open:
            calendar = self.calendars[clock.calendar]
            extra = business(by, calendar)
            clock.limit_s += extra
            if clock.status == "running":
                self._relay(clock, at)
            self._note(clock, at, "extended", f"{why}: +{by}", extra_s=extra)

    # -- one clock -------------------------------------------------------------------------

    def start(
        self, definition: WorkflowDef, scope: str, state: str | None, spec: Mapping, at: datetime, why: str
    ) -> Any:
        """A new running clock; its deadline and first history entry go in with the INSERT."""
        policy = resolve(definition, spec, self.case, self.calendars, at.astimezone(self.tz).month)
        calendar = self.calendars[policy.calendar]
        begin = calendar.next_working_instant(at)
        deadline = calendar.add(begin, timedelta(seconds=policy.limit_s))
        note = f"{why}; limit {policy.limit_text} on the {policy.calendar} calendar"
        if begin != at:
            note += f"; outside working time, counting from {begin.astimezone(self.tz):%Y-%m-%d %H:%M}"
        clock = SimpleNamespace(
            case_id=self.case.id,
            scope=scope,
            state=state,
            calendar=policy.calendar,
            limit_s=policy.limit_s,
            consumed_s=0,
            status="running",
            generation=1,
            segment_start=begin,
            started_at=at,
            stopped_at=None,
            due_at=deadline.at,
            estimated=deadline.estimated,
            breached_at=None,
            outcome=None,
            policy=policy.to_json(),
            history=[],
            assignee_id=self.case.assignee_id if scope == "state" else None,
            stopped_by=None,
        )
        clock.history = [self._entry(clock, at, "started", note)]
        clock.id = -1 - len(self._new)  # inserted by finish(); its timers are numbered then
        self._new.append(clock)
        self.open.append(clock)
        self._lay(clock, policy, calendar, fired=set())
        return clock

    def pause(self, clock: Any, at: datetime, why: str) -> None:
        self._note_breach(clock, at)
        clock.consumed_s += self._segment(clock, at)
        clock.status, clock.segment_start, clock.due_at = "paused", None, None
        self._cancel_timers(clock, f"paused: {why}")
        self._note(clock, at, "paused", why)

    def resume(self, clock: Any, at: datetime, why: str) -> None:
        calendar = self.calendars[clock.calendar]
        clock.status, clock.segment_start = "running", calendar.next_working_instant(at)
        self._relay(clock, at)
        self._note(clock, at, "resumed", why)

    def stop(self, clock: Any, at: datetime, why: str, trigger: str | None = None) -> None:
        if clock.status == "running":
            self._note_breach(clock, at)
            clock.consumed_s += self._segment(clock, at)
        late = clock.breached_at is not None or clock.consumed_s > clock.limit_s
        clock.status, clock.stopped_at, clock.segment_start = "stopped", at, None
        clock.stopped_by = trigger
        clock.outcome = "breached" if late else "met"
        self._cancel_timers(clock, f"stopped: {why}")
        self._note(clock, at, "stopped", f"{why}; {clock.outcome}")
        self.open.remove(clock)

    # -- internals -------------------------------------------------------------------------

    def _segment(self, clock: Any, at: datetime) -> int:
        if clock.segment_start is None or at <= clock.segment_start:
            return 0
        return int(self.calendars[clock.calendar].between(clock.segment_start, at).total_seconds())

    def _set_deadline(self, clock: Any, calendar: WorkCalendar, begin: datetime) -> None:
        """The deadline of a running clock; one already past keeps the time it breached."""
        if clock.consumed_s >= clock.limit_s and clock.breached_at is not None:
            clock.due_at = clock.breached_at
            return
        deadline = calendar.add(begin, timedelta(seconds=max(0, clock.limit_s - clock.consumed_s)))
        clock.due_at, clock.estimated = deadline.at, deadline.estimated

    @staticmethod
    def _at_consumed(calendar: WorkCalendar, clock: Any, begin: datetime, point_s: int) -> datetime:
        """When the clock will have used ``point_s`` business seconds (now, if it already has)."""
        left = point_s - clock.consumed_s
        return calendar.add(begin, timedelta(seconds=left)).at if left > 0 else begin

    @staticmethod
    def _note_breach(clock: Any, at: datetime) -> None:
        """A running clock whose deadline has passed was breached at its deadline, whether or not the
        sweep has fired the breach timer yet: a step that pauses, extends or stops the clock now
        (and cancels that timer) must not erase the breach. So the record does not depend on how
        far behind the sweep happened to be."""
        if clock.status == "running" and clock.breached_at is None and clock.due_at is not None and clock.due_at < at:
            clock.breached_at = clock.due_at

    def _relay(self, clock: Any, at: datetime) -> None:
        """Lay the clock's timers again (after a resume or an extension), from what is left."""
        self._note_breach(clock, at)
        calendar = self.calendars[clock.calendar]
        self._cancel_timers(clock, "laid again")
        clock.generation += 1
        self._set_deadline(clock, calendar, clock.segment_start or at)
        fired = (
            {(t["kind"], t["level"]) for t in case_repo.fetch_dicts(self.conn, _FIRED, {"clock": clock.id})}
            if clock.id > 0
            else set()  # started in this step: nothing has fired
        )
        self._lay(clock, Policy.from_json(clock.policy), calendar, fired)

    def _lay(self, clock: Any, policy: Policy, calendar: WorkCalendar, fired: set[tuple[str, int]]) -> None:
        begin = clock.segment_start
        assert begin is not None and clock.due_at is not None
        rows = []
        for index, reminder in enumerate(policy.reminders, start=1):
            point = reminder.consumed_at(clock.limit_s)
            if point > clock.consumed_s and ("reminder", index) not in fired:
                rows.append(("reminder", index, self._at_consumed(calendar, clock, begin, point)))
        if clock.breached_at is None:
            rows.append(("breach", 0, clock.due_at))
        for level, step in enumerate(policy.ladder, start=1):
            if ("escalation", level) not in fired:  # levels count in business time from the breach
                rows.append(
                    ("escalation", level, self._at_consumed(calendar, clock, begin, clock.limit_s + step.after_s))
                )
        for kind, level, fire_at in rows:
            self._timers.append(
                {
                    "clock_id": clock.id,
                    "case_id": clock.case_id,
                    "kind": kind,
                    "level": level,
                    "generation": clock.generation,
                    "fire_at": fire_at,
                    "status": "pending",
                    "attempts": 0,
                    "lease_until": None,
                    "claimed_by": None,
                    "fired_at": None,
                    "note": None,
                    "dedupe_key": None,  # "<clock>:<generation>:<kind>:<level>", set by finish()
                }
            )

    def _cancel_timers(self, clock: Any, why: str) -> None:
        """Cancel the clock's pending timers (in finish()), and any this step queued for it."""
        self._timers = [t for t in self._timers if t["clock_id"] != clock.id]
        if clock.id > 0:  # a clock started in this step has no timers in the database yet
            self._cancel.setdefault(clock.id, why)
            self._changed[clock.id] = clock

    def _note(self, clock: Any, at: datetime, what: str, why: str, **extra: Any) -> None:
        clock.history = [*(clock.history or []), self._entry(clock, at, what, why, **extra)]
        if clock.id > 0:  # a new clock goes in with its history by finish()
            self._changed[clock.id] = clock

    @staticmethod
    def _entry(clock: Any, at: datetime, what: str, why: str, **extra: Any) -> dict[str, Any]:
        return {
            "at": at.isoformat(),
            "what": what,
            "why": why,
            "consumed_s": clock.consumed_s,
            "limit_s": clock.limit_s,
            "due_at": clock.due_at.isoformat() if clock.due_at else None,
            "estimated": clock.estimated,
            **extra,
        }

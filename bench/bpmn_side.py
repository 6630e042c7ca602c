"""The BPMN side of ``bench/transitions.py``: the same case lifecycle run by SpiffWorkflow 3.x.

SpiffWorkflow is not a dependency of gridflow. The bench uses it when it is installed in the
bench's environment (``pip install 'SpiffWorkflow>=3,<4'``); :func:`missing` says why it cannot
run otherwise, and the other sides run without it.

The model (:func:`bpmn_xml`) is written from ``workflows/grid_case.yaml``: a process whose
``case`` sub-process holds one user task per step after the report (classify → assign → accept →
resolve → verify). The timers gridflow lays per state become non-interrupting timer boundary
events on the user task that leaves that state: each reminder, the breach, each escalation level
(counted from the breach, like gridflow), with the limit the shortest of ``limit``, ``by_category``
and ``by_priority``, as a Python expression on the case's data that SpiffWorkflow's script engine
evaluates when the task starts waiting. The ``case_sla`` timers sit on the sub-process. Two
differences stay: BPMN durations are wall-clock time from "now" (gridflow counts working hours
on the case's calendar and the case's own time), and a fired timer only ends in a none end event
(gridflow's notices are not modelled: no timer comes due during the bench).

Persistence, the way SpiffWorkflow's server used to keep a process instance: after every step
the whole workflow is serialised with ``BpmnWorkflowSerializer`` to JSON and written to a row
(``bpmn_workflow``), beside a small per-case row (``bpmn_case``: state, version, times, done),
one transaction per step; the next step reads the row back and deserialises it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

import psycopg
import yaml

from bench.counted import CountedStatements

try:  # optional: the bench's environment may not have it
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    _IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the environment
    _IMPORT_ERROR = str(exc)

REQUIREMENT = "SpiffWorkflow>=3,<4"
PROCESS_ID = "grid_case"
SUBPROCESS_ID = "case"
DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}
# The state each user task leaves (its SLA's timers are on the task): grid_case's happy path.
TASK_STATES = (
    ("classify", "reported"),
    ("assign", "classified"),
    ("accept", "assigned"),
    ("resolve", "in_progress"),
    ("verify", "resolved"),
)


def missing() -> str | None:
    """Why the BPMN side cannot run here, or None when it can."""
    if _IMPORT_ERROR is not None:
        return f"SpiffWorkflow is not installed ({_IMPORT_ERROR}); pip install '{REQUIREMENT}' to run the BPMN side"
    try:
        found = importlib.metadata.version("SpiffWorkflow")
    except importlib.metadata.PackageNotFoundError:
        return f"SpiffWorkflow imports but has no package metadata; pip install '{REQUIREMENT}'"
    if found.split(".")[0] != "3":
        return f"SpiffWorkflow {found} is installed; the BPMN side is written for {REQUIREMENT}"
    return None


def version() -> str:
    return importlib.metadata.version("SpiffWorkflow")


class StepLike(Protocol):
    trigger: str
    actor: str
    fields: dict[str, Any]
    to_state: str


# -- the model -----------------------------------------------------------------------


def seconds(text: str) -> int:
    return int(text[:-1]) * DURATION_UNITS[text[-1]]


@dataclass(frozen=True)
class Timer:
    """One timer boundary event: its id, the activity it is attached to, and its duration expression."""

    id: str
    attached_to: str
    expression: str  # Python, evaluated on the task's data to an ISO 8601 duration


def limit_expression(sla: Mapping[str, Any]) -> str:
    """The limit in seconds, as Python on the case's data: the shortest of limit and the overrides."""
    terms = [str(seconds(sla["limit"]))]
    for key, name in (("by_category", "category"), ("by_priority", "priority")):
        overrides = {k: seconds(v) for k, v in sla.get(key, {}).items()}
        if overrides:
            terms.append(f"{overrides!r}.get({name}, {terms[0]})")
    return terms[0] if len(terms) == 1 else f"min({', '.join(terms)})"


def sla_timers(activity: str, sla: Mapping[str, Any]) -> list[Timer]:
    """The timers gridflow lays for one clock: reminders, the breach, the escalation ladder."""
    limit = limit_expression(sla)
    points: list[tuple[str, str]] = []
    for index, reminder in enumerate(sla.get("reminders", ()), start=1):
        if "at" in reminder:
            points.append((f"reminder{index}", f"({limit}) * {int(str(reminder['at']).rstrip('%'))} // 100"))
        else:
            points.append((f"reminder{index}", f"max(0, ({limit}) - {seconds(reminder['before'])})"))
    points.append(("breach", limit))
    for level, step in enumerate(sla.get("escalation", ()), start=1):
        after = 0 if step["after"] == "breach" else seconds(step["after"])
        points.append((f"escalation{level}", f"({limit}) + {after}"))
    return [Timer(f"{activity}_{kind}", activity, f"'PT%dS' % ({expr})") for kind, expr in points]


def model_timers(workflow: Mapping[str, Any]) -> list[Timer]:
    timers = sla_timers(SUBPROCESS_ID, workflow["case_sla"]) if workflow.get("case_sla") else []
    for task, state in TASK_STATES:
        sla = workflow["states"][state].get("sla")
        if sla:
            timers += sla_timers(task, sla)
    return timers


def bpmn_xml(workflow_file: Path) -> str:
    """The BPMN 2.0 XML of the lifecycle, its timers taken from the workflow's SLA settings."""
    doc = yaml.safe_load(workflow_file.read_text(encoding="utf-8"))
    timers = model_timers(doc)
    triggers = doc["triggers"]
    inner: list[str] = ['<bpmn:startEvent id="case_start" />']
    previous = "case_start"
    for task, _state in TASK_STATES:
        inner.append(f"<bpmn:userTask id={quoteattr(task)} name={quoteattr(triggers[task]['label'])} />")
        inner.append(f'<bpmn:sequenceFlow id="to_{task}" sourceRef="{previous}" targetRef="{task}" />')
        previous = task
    inner.append('<bpmn:endEvent id="case_end" />')
    inner.append(f'<bpmn:sequenceFlow id="to_case_end" sourceRef="{previous}" targetRef="case_end" />')
    outer: list[str] = [
        '<bpmn:startEvent id="reported" />',
        f'<bpmn:sequenceFlow id="to_case" sourceRef="reported" targetRef="{SUBPROCESS_ID}" />',
        '<bpmn:endEvent id="verified" />',
        f'<bpmn:sequenceFlow id="to_verified" sourceRef="{SUBPROCESS_ID}" targetRef="verified" />',
    ]
    for timer in timers:
        body = outer if timer.attached_to == SUBPROCESS_ID else inner
        body.append(
            f'<bpmn:boundaryEvent id="{timer.id}" attachedToRef="{timer.attached_to}" cancelActivity="false">'
            f'<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">'
            f"{escape(timer.expression)}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        )
        body.append(f'<bpmn:endEvent id="{timer.id}_noted" />')
        body.append(f'<bpmn:sequenceFlow id="{timer.id}_fired" sourceRef="{timer.id}" targetRef="{timer.id}_noted" />')
    subprocess = (
        f'<bpmn:subProcess id="{SUBPROCESS_ID}" name="网格事件">{"".join(_indent(inner))}\n    </bpmn:subProcess>'
    )
    outer.insert(1, subprocess)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="grid_case_definitions"'
        ' targetNamespace="https://gridflow.invalid/bench">\n'
        f'  <bpmn:process id="{PROCESS_ID}" name={quoteattr(doc["title"])} isExecutable="true">'
        f"{''.join(_indent(outer, 4))}\n  </bpmn:process>\n</bpmn:definitions>\n"
    )


def _indent(lines: list[str], width: int = 6) -> list[str]:
    return [f"\n{' ' * width}{line}" for line in lines]


# -- the store -----------------------------------------------------------------------

SCHEMA = (
    "CREATE TABLE bpmn_case (id bigserial PRIMARY KEY, title text NOT NULL, state text NOT NULL,"
    " waiting_on text, version integer NOT NULL, completed boolean NOT NULL, reported_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL)",
    "CREATE TABLE bpmn_workflow (case_id bigint PRIMARY KEY REFERENCES bpmn_case (id), serialization json NOT NULL)",
)
INSERT_CASE = (
    "INSERT INTO bpmn_case (title, state, waiting_on, version, completed, reported_at, updated_at)"
    " VALUES (%s, %s, %s, 1, false, %s, %s) RETURNING id"
)
INSERT_WORKFLOW = "INSERT INTO bpmn_workflow (case_id, serialization) VALUES (%s, %s)"
LOAD = (
    "SELECT c.version, w.serialization::text FROM bpmn_case c JOIN bpmn_workflow w ON w.case_id = c.id"
    " WHERE c.id = %s FOR UPDATE"
)
SAVE_WORKFLOW = "UPDATE bpmn_workflow SET serialization = %s WHERE case_id = %s"
SAVE_CASE = (
    "UPDATE bpmn_case SET state = %s, waiting_on = %s, version = version + 1, completed = %s, updated_at = %s"
    " WHERE id = %s AND version = %s"
)


class BpmnError(Exception):
    """The BPMN side went wrong: a step found no task to do, a case did not finish, a timer is missing."""


def create_tables(conn: psycopg.Connection) -> None:
    for sql in SCHEMA:
        conn.execute(sql)
    conn.commit()


class Model:
    """The parsed process (once, as a server caches its specs), the serializer and the script engine."""

    def __init__(self, workflow_file: Path):
        reason = missing()
        if reason:
            raise BpmnError(reason)
        self.xml = bpmn_xml(workflow_file)
        self.timers = model_timers(yaml.safe_load(workflow_file.read_text(encoding="utf-8")))
        parser = BpmnParser()
        parser.add_bpmn_str(self.xml.encode("utf-8"), filename="grid_case.bpmn")
        self.spec = parser.get_spec(PROCESS_ID)
        self.subprocess_specs = parser.get_subprocess_specs(PROCESS_ID)
        self.script_engine = PythonScriptEngine()
        self.serializer = BpmnWorkflowSerializer()

    def new(self, data: Mapping[str, Any]) -> BpmnWorkflow:
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script_engine)
        workflow.get_tasks(state=TaskState.READY)[0].data.update(data)  # the start event's data
        workflow.do_engine_steps()
        return workflow

    def load(self, serialization: str) -> BpmnWorkflow:
        workflow = self.serializer.deserialize_json(serialization)
        workflow.script_engine = self.script_engine
        return workflow

    def dump(self, workflow: BpmnWorkflow) -> str:
        return self.serializer.serialize_json(workflow)


def waiting_on(workflow: BpmnWorkflow) -> str | None:
    ready = workflow.get_next_task(state=TaskState.READY, manual=True)
    return ready.task_spec.name if ready else None


def waiting_timers(workflow: BpmnWorkflow) -> dict[str, str]:
    """The timer boundary events waiting now, by id, with the time each fires (set once it waits)."""
    found: dict[str, str] = {}
    tasks = [
        task for wf in (workflow, *workflow.subprocesses.values()) for task in wf.get_tasks(state=TaskState.WAITING)
    ]
    for task in tasks:
        definition = getattr(task.task_spec, "event_definition", None)
        if definition is not None and type(definition).__name__.endswith("TimerEventDefinition"):
            found[task.task_spec.name] = task._get_internal_data("event_value")
    return found


class BpmnClient(CountedStatements):
    """One case at a time through SpiffWorkflow, persisted after each step, one transaction per step."""

    def __init__(
        self,
        conn: psycopg.Connection,
        model: Model,
        steps: Sequence[StepLike],
        step_time: Any,
    ):
        self.conn = conn
        self.model = model
        self.steps = steps
        self.step_time = step_time  # index -> datetime, the bench's fixed clock
        super().__init__()

    def lifecycle(self) -> int:
        case_id = self.report(self.steps[0])
        for index, step in enumerate(self.steps[1:], start=1):
            self.fire(case_id, index, step)
        return case_id

    def report(self, step: StepLike) -> int:
        at = self.step_time(0)
        self._step = step.trigger
        data = {"category": None, "priority": None, "reporter": step.actor, **step.fields}
        workflow = self.model.new(data)
        with self.conn.cursor() as cur:
            case_id = self._one(cur, INSERT_CASE, (step.fields["title"], step.to_state, waiting_on(workflow), at, at))
            self._run(cur, INSERT_WORKFLOW, (case_id, self.model.dump(workflow)))
        self.conn.commit()
        return case_id

    def fire(self, case_id: int, index: int, step: StepLike) -> None:
        at = self.step_time(index)
        self._step = step.trigger
        with self.conn.cursor() as cur:
            self._run(cur, LOAD, (case_id,))
            row = cur.fetchone()
            if row is None:
                raise BpmnError(f"BPMN case {case_id} has no row")
            version, serialization = row
            workflow = self.model.load(serialization)
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            if task is None or task.task_spec.name != step.trigger:
                found = task.task_spec.name if task else "nothing"
                raise BpmnError(f"BPMN case {case_id}: {step.trigger} is not the task to do ({found} is)")
            task.data.update(step.fields)
            task.data[f"{step.trigger}_by"] = step.actor
            task.run()
            workflow.do_engine_steps()
            done = workflow.is_completed()
            self._run(cur, SAVE_WORKFLOW, (self.model.dump(workflow), case_id))
            self._run(cur, SAVE_CASE, (step.to_state, waiting_on(workflow), done, at, case_id, version))
            if cur.rowcount != 1:
                raise BpmnError(f"BPMN {step.trigger} of case {case_id}: compare-and-set on version {version} lost")
        self.conn.commit()


# -- checks --------------------------------------------------------------------------


def check_batch(conn: psycopg.Connection, model: Model, ids: list[int], steps: int, final_state: str) -> None:
    """Every case of a timed batch has done all its steps: its case row says so, and its stored
    workflow, deserialised, is complete."""
    closed = conn.execute(
        "SELECT count(*) FROM bpmn_case WHERE id = ANY(%s) AND completed AND state = %s AND version = %s"
        " AND waiting_on IS NULL",
        (ids, final_state, steps),
    ).fetchone()
    rows = conn.execute(
        "SELECT case_id, serialization::text FROM bpmn_workflow WHERE case_id = ANY(%s) ORDER BY case_id", (ids,)
    ).fetchall()
    conn.commit()
    count = closed[0] if closed else 0
    if count != len(ids) or len(rows) != len(ids):
        raise BpmnError(f"BPMN batch incomplete: {count}/{len(ids)} cases completed, {len(rows)} workflows stored")
    unfinished = [case_id for case_id, blob in rows if not model.load(blob).is_completed()]
    if unfinished:
        raise BpmnError(f"BPMN batch incomplete: the stored workflow of case {unfinished[0]} is not complete")


def check_timers(conn: psycopg.Connection, model: Model, steps: Sequence[StepLike], step_time: Any) -> dict:
    """Walk one case step by step and check, from its stored row after each step, that exactly the
    timer boundary events of the task it waits on (and the case's) are waiting, each with a due time;
    return what was seen (task -> timers waiting) for the report."""
    client = BpmnClient(conn, model, steps, step_time)
    expected: dict[str | None, set[str]] = {None: set()}
    case_timers = {t.id for t in model.timers if t.attached_to == SUBPROCESS_ID}
    for task, _state in TASK_STATES:
        expected[task] = {t.id for t in model.timers if t.attached_to == task} | case_timers
    seen: dict[str, int] = {}
    case_id = 0
    for index, step in enumerate(steps):
        if index == 0:
            case_id = client.report(step)
        else:
            client.fire(case_id, index, step)
        row = conn.execute("SELECT serialization::text FROM bpmn_workflow WHERE case_id = %s", (case_id,)).fetchone()
        conn.commit()
        assert row is not None
        workflow = model.load(row[0])
        task = waiting_on(workflow)
        timers = waiting_timers(workflow)
        if set(timers) != expected.get(task, set()) or not all(timers.values()):
            raise BpmnError(
                f"BPMN case {case_id} after {step.trigger}, waiting on {task}: timers waiting {sorted(timers)},"
                f" expected {sorted(expected.get(task, set()))} (each with a due time)"
            )
        if task:
            seen[task] = len(timers)
    return seen


def timer_summary(model: Model) -> dict[str, list[str]]:
    by_activity: dict[str, list[str]] = {}
    for timer in model.timers:
        by_activity.setdefault(timer.attached_to, []).append(timer.id.removeprefix(f"{timer.attached_to}_"))
    return by_activity

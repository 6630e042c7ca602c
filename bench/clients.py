"""``--procs N`` of ``bench/transitions.py``: every side run by N client processes at once.

Each client process (started with ``spawn``, so it shares nothing with the parent but the database)
builds its own sides on its own connections: the engine and engine_sla on their own SQLAlchemy engine,
the plain sides on a psycopg connection, the BPMN side with its own parsed model. It walks one case
through each side untimed (warm-up), then waits for orders: "run side S for n cases" answers with the
batch's wall seconds, this process's CPU seconds and the case ids. The parent sends an order to all
clients at once and takes the time from the first order sent to the last answer, so a side's rate is
``N × n / wall``. Whatever happens, :meth:`Clients.close` stops every client (terminating one that does
not stop within a few seconds), so nothing outlives the run.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ANSWER_TIMEOUT_S = 600  # one batch of one client; a client silent for longer has hung
STOP_TIMEOUT_S = 5


@dataclass(frozen=True)
class ClientSpec:
    """What a client process needs to build its sides (all picklable)."""

    url: str  # the throwaway database, SQLAlchemy form
    target: Any  # transitions.Target of the plain workflow
    sla_target: Any  # transitions.Target of the default workflow
    script: Any  # plain_sla.Script
    bpmn: bool


def _serve(pipe: Any, spec: ClientSpec) -> None:
    """A client process: build the sides, warm each up, then run the batches it is sent."""
    import psycopg

    from bench import transitions as t
    from bench.plain_sla import PlainSlaClient
    from engine.store.db import create_db_engine, session_factory

    engine = create_db_engine(spec.url)
    sessions = session_factory(engine)
    url = t.make_url(spec.url)
    try:
        with psycopg.connect(t.psycopg_conninfo(url)) as conn:
            sides = {
                "engine": lambda: t.engine_lifecycle(sessions),
                "plain": t.PlainClient(conn, spec.target).lifecycle,
                "plain_cte": t.PlainClient(conn, spec.target, cte=True).lifecycle,
                "engine_sla": lambda: t.engine_lifecycle(sessions, workflow="grid_case"),
                "plain_sla": PlainSlaClient(
                    conn, spec.sla_target, spec.script, t.LIFECYCLE, t.step_time, t.GRID
                ).lifecycle,
            }
            if spec.bpmn:
                side = t._bpmn()
                sides[t.BPMN_SIDE] = side.BpmnClient(
                    conn, side.Model(t.WORKFLOW_FILE), t.LIFECYCLE, t.step_time
                ).lifecycle
            for run in sides.values():
                run()
            pipe.send(("ready", None))
            while True:
                order = pipe.recv()
                if order is None:
                    return
                name, n = order
                started, cpu = time.perf_counter(), time.process_time()
                ids = [sides[name]() for _ in range(n)]
                pipe.send(("done", (time.perf_counter() - started, time.process_time() - cpu, ids)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        try:
            pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        except (OSError, ValueError):
            pass
    finally:
        engine.dispose()


class ClientError(Exception):
    """A client process failed or stopped answering."""


class Clients:
    """N client processes; :meth:`start` them, :meth:`close` them whatever happened (see :func:`clients`)."""

    def __init__(self, procs: int, spec: ClientSpec):
        self.procs, self.spec = procs, spec
        self._pipes: list[Any] = []
        self._procs: list[Any] = []

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for _ in range(self.procs):
            parent, child = context.Pipe()
            proc = context.Process(target=_serve, args=(child, self.spec), daemon=True)
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)
        for pipe in self._pipes:
            self._answer(pipe)

    def _answer(self, pipe: Any) -> Any:
        if not pipe.poll(ANSWER_TIMEOUT_S):
            raise ClientError(f"a client process did not answer within {ANSWER_TIMEOUT_S} s")
        try:
            kind, value = pipe.recv()
        except EOFError:
            raise ClientError("a client process died (see its traceback above)") from None
        if kind == "failed":
            raise ClientError(f"a client process failed: {value}")
        return value

    def batch(self, side: str, n: int) -> tuple[float, float, list[int]]:
        """Every client runs ``n`` cases of ``side`` at once: (wall seconds, CPU seconds of all clients, ids)."""
        started = time.perf_counter()
        for pipe in self._pipes:
            pipe.send((side, n))
        answers = [self._answer(pipe) for pipe in self._pipes]
        wall = time.perf_counter() - started
        return wall, sum(a[1] for a in answers), [i for a in answers for i in a[2]]

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(STOP_TIMEOUT_S)
        for pipe in self._pipes:
            pipe.close()


@contextmanager
def clients(procs: int, spec: ClientSpec) -> Iterator[Clients]:
    """N client processes, started and warmed up; all stopped on the way out, also after an error."""
    running = Clients(procs, spec)
    try:
        running.start()
        yield running
    finally:
        running.close()

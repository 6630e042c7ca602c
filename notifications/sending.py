"""The send step of the dispatcher: a batch's messages go out on worker threads while the dispatcher's
own thread does the database work of the batches before and after it.

The protocol:

- a **lane** is one recipient's messages of one batch, rendered by the plan, in its order; one worker runs
  a lane from start to end, so a person's messages go out in order, and a webhook subscriber that fails stops its
  other calls of the claim (they wait for the retry step, as when sent one by one);
- there are as many workers as the largest ``in_flight`` of the configured channels; when that is 1 there
  is no worker at all (``inline``): every message goes out on the dispatcher's own thread, in plan order,
  as before, for a worker beside it would only add their contention for the interpreter lock (measured:
  0.2 ms of CPU an e-mail); a channel's semaphore holds its messages in flight to its own ``in_flight``;
- each worker keeps its own connections (:func:`notifications.channels.keep.keep_alive`, for the whole
  :class:`Senders` block): a connection carries one request at a time and is never shared between
  threads, so "not sent" and "maybe sent" keep their meaning per request;
- workers only call channels; the dispatcher's thread reads the outcomes (:meth:`Sending.wait`) and
  records each once. An error of the machinery itself (not of a channel: :func:`send_one` turns those
  into failed attempts) is raised by :meth:`Sending.wait`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from notifications.channels import keep
from notifications.channels.base import Channel, Message, SendResult, channel_secrets, mask_secrets

MAX_IN_FLIGHT = 32


def in_flight(channel: Any) -> int:
    """How many messages ``channel`` may have on the wire at once (``in_flight``; 1 without one)."""
    return max(1, min(int(getattr(channel, "in_flight", 1) or 1), MAX_IN_FLIGHT))


@dataclass
class Outcome:
    """One attempt: what was sent, what came back, how long it took."""

    item: Any  # the dispatcher's send: its ``channel`` and ``message``, and what else it carries
    result: SendResult
    ms: int


@dataclass
class Lane:
    """One recipient's sends of a batch (each with a ``channel`` and a ``message``), in order; when
    ``give_up(item, result)`` says so after one, the rest are not sent and come back in ``held``."""

    items: list[Any]
    outcomes: list[Outcome] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)


def send_one(channel: Channel, message: Message) -> tuple[SendResult, int]:
    """One message through ``channel``: a channel's exception is a failed attempt, never a lost notice;
    the error carries no secret of the channel."""
    started = time.monotonic()
    try:
        result = channel.send(message)
    except Exception as exc:  # noqa: BLE001 - a channel bug is a failed attempt, not a lost notice
        result = SendResult.failed(f"{exc.__class__.__name__}: {exc}")
    if result.error:  # what a provider answered, an exception's text: stored, logged, reported, never a secret
        result = replace(result, error=mask_secrets(result.error, channel_secrets(channel)))
    return result, int((time.monotonic() - started) * 1000)


class Sending:
    """The lanes of one batch on their way; :meth:`wait` for them."""

    def __init__(self, lanes: list[Lane], futures: list[Future[Lane]]):
        self.lanes = lanes
        self._futures = futures

    def wait(self) -> list[Lane]:
        """The lanes, done, in the order given (a worker's own error is raised here)."""
        for future in self._futures:
            future.result()
        return self.lanes


@dataclass
class Stats:
    workers: int = 0
    connections: int = 0  # made by the workers' channels in the block
    most_in_flight: int = 0  # the most messages on the wire at once


class Senders:
    """Worker threads for the sends of one dispatcher call (a context manager: the workers stop, and their
    kept connections close, when it ends)."""

    def __init__(self, workers: int):
        self.stats = Stats(workers=max(1, min(workers, MAX_IN_FLIGHT)))
        self.inline = self.stats.workers == 1  # one at a time: sent on the caller's thread, no worker
        self._scope: Any = None
        self._kept: keep.Kept | None = None
        self._jobs: queue.SimpleQueue[tuple[Future[Lane], Lane, Callable[[Any, SendResult], bool]] | None]
        self._jobs = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._gates: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._flying = 0

    def __enter__(self) -> Senders:
        if self.inline:
            self._scope = keep.keep_alive()
            self._kept = self._scope.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._scope is not None:
            assert self._kept is not None
            self.stats.connections += self._kept.opened
            self._scope.__exit__(*exc)
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()  # every send has a time budget of its own

    def start(self, lanes: list[Lane], give_up: Callable[[Any, SendResult], bool]) -> Sending:
        """Send the lanes, each on one worker, and return at once (inline: send them, then return)."""
        if self.inline:
            return Sending(lanes, [_done(self._run(lane, give_up)) for lane in lanes])
        if lanes and not self._threads:
            for k in range(self.stats.workers):
                thread = threading.Thread(target=self._work, name=f"gridflow-send-{k}", daemon=True)
                thread.start()
                self._threads.append(thread)
        futures: list[Future[Lane]] = []
        for lane in lanes:
            future: Future[Lane] = Future()
            self._jobs.put((future, lane, give_up))
            futures.append(future)
        return Sending(lanes, futures)

    def _work(self) -> None:
        with keep.keep_alive() as kept:
            try:
                while (job := self._jobs.get()) is not None:
                    future, lane, give_up = job
                    try:
                        future.set_result(self._run(lane, give_up))
                    except BaseException as exc:  # noqa: BLE001 - handed to the dispatcher's thread
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self.stats.connections += kept.opened

    def _run(self, lane: Lane, give_up: Callable[[Any, SendResult], bool]) -> Lane:
        for k, item in enumerate(lane.items):
            with self._gate(item.channel):
                result, ms = send_one(item.channel, item.message)
            lane.outcomes.append(Outcome(item, result, ms))
            if give_up(item, result):
                lane.held = lane.items[k + 1 :]
                break
        return lane

    def _gate(self, channel: Any) -> _Gate:
        name = str(getattr(channel, "name", id(channel)))
        with self._lock:
            gate = self._gates.get(name)
            if gate is None:
                gate = self._gates[name] = threading.BoundedSemaphore(in_flight(channel))
        return _Gate(self, gate)


def _done(lane: Lane) -> Future[Lane]:
    future: Future[Lane] = Future()
    future.set_result(lane)
    return future


class _Gate:
    """A channel's slot for one message, counted in :attr:`Stats.most_in_flight`."""

    def __init__(self, senders: Senders, gate: threading.BoundedSemaphore):
        self._senders, self._gate = senders, gate

    def __enter__(self) -> None:
        self._gate.acquire()
        s = self._senders
        with s._lock:
            s._flying += 1
            s.stats.most_in_flight = max(s.stats.most_in_flight, s._flying)

    def __exit__(self, *exc: object) -> None:
        s = self._senders
        with s._lock:
            s._flying -= 1
        self._gate.release()

"""A fake 企业微信群机器人 (WeCom group robot) webhook: a real HTTP server on 127.0.0.1.

::

    with WecomRobot() as robot:
        url = robot.webhook("mayingtai")      # http://127.0.0.1:PORT/cgi-bin/webhook/send?key=…
        ...                                   # a wecom channel posts to it
        robot.posts("mayingtai")              # the JSON bodies that robot took

``POST /cgi-bin/webhook/send?key=KEY`` with a known key records the JSON body and answers
``{"errcode":0,"errmsg":"ok"}``; an unknown key gets errcode 93000 (invalid webhook url), as the
real robot does. Faults, for every robot or one, optionally only the next ``times`` posts:
``errcode(45009)`` (``errmsg=`` what the reply says then, ``{key}`` the robot's key), ``http_status(500)``,
``delay(seconds)`` (past the client's timeout; the post is recorded first, as a robot that posted but
answered late), ``drop()`` (close without a reply), and ``refuse()``: a ``with`` block during which
nothing listens on the port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
PATH = "/cgi-bin/webhook/send"


@dataclass
class Post:
    group: str
    key: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]

    @property
    def content(self) -> str:
        msgtype = self.body.get("msgtype", "")
        return str(self.body.get(msgtype, {}).get("content", ""))


@dataclass
class _Fault:
    group: str | None
    errcode: int | None = None
    errmsg: str | None = None  # {key} and {url}: the robot's key and the URL posted to
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int | None = None
    hits: int = field(default=0)


class WecomRobot:
    """Group robots (one key each) behind one loopback HTTP server, for a ``with`` block."""

    def __init__(self, groups: tuple[str, ...] = ("shengli", "mayingtai", "mayingtai-01")):
        self.keys = {group: str(uuid.uuid4()) for group in groups}
        self.received: list[Post] = []
        self.requests = 0  # every request, recorded or not
        self.faults: list[_Fault] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._start(0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._stop()

    def _start(self, port: int) -> None:
        robot = self

        class Handler(_Handler):
            pass

        Handler.robot = robot
        server = ThreadingHTTPServer((HOST, port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
            self._server = self._thread = None

    def refuse(self) -> _Refusing:
        """``with robot.refuse():`` nothing listens on the robot's port (connections are refused)."""
        return _Refusing(self)

    # -- addresses and records -----------------------------------------------------------------

    def webhook(self, group: str, key: str | None = None) -> str:
        return f"http://{HOST}:{self.port}{PATH}?key={key or self.keys[group]}"

    def posts(self, group: str | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self.received if group is None or p.group == group]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Post]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} post(s), the robot has {len(self.received)}")
                self._lock.wait(left)
            return list(self.received[:count])

    # -- faults ------------------------------------------------------------------------------

    def errcode(
        self, code: int, *, group: str | None = None, times: int | None = None, errmsg: str | None = None
    ) -> None:
        """Answer HTTP 200 with this errcode (45009: rate limited, 93000: invalid key, …); ``errmsg``, if
        given, is the reply's errmsg with ``{key}`` and ``{url}`` filled in (a reply that echoes the key)."""
        self._add(_Fault(group, errcode=code, errmsg=errmsg, times=times))

    def http_status(self, status: int, *, group: str | None = None, times: int | None = None) -> None:
        self._add(_Fault(group, status=status, times=times))

    def delay(self, seconds: float, *, group: str | None = None, times: int | None = None) -> None:
        self._add(_Fault(group, delay=seconds, times=times))

    def drop(self, *, group: str | None = None, times: int | None = None) -> None:
        self._add(_Fault(group, drop=True, times=times))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _match(self, group: str) -> _Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.group is None or fault.group == group) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, post: Post) -> None:
        with self._lock:
            self.received.append(post)
            self._lock.notify_all()


class _Refusing:
    def __init__(self, robot: WecomRobot):
        self.robot = robot

    def __enter__(self) -> WecomRobot:
        self.port = self.robot.port
        self.robot._stop()
        return self.robot

    def __exit__(self, *exc: object) -> None:
        self.robot._start(self.port)


class _Handler(BaseHTTPRequestHandler):
    robot: WecomRobot
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        robot = self.robot
        with robot._lock:
            robot.requests += 1
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if url.path != PATH:
            self._reply(404, {"errcode": 404, "errmsg": "not found"})
            return
        key = (parse_qs(url.query).get("key") or [""])[0]
        group = next((g for g, k in robot.keys.items() if k == key), None)
        if group is None:
            self._reply(200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [test], from ip: 127.0.0.1"})
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._reply(200, {"errcode": 40016, "errmsg": "invalid json"})  # not what the real one says
            return
        fault = robot._match(group)
        if fault is not None and fault.errcode is not None:
            errmsg = "api freq out of limit" if fault.errcode == 45009 else "err"
            if fault.errmsg is not None:
                errmsg = fault.errmsg.format(key=key, url=f"http://{HOST}:{robot.port}{self.path}")
            self._reply(200, {"errcode": fault.errcode, "errmsg": errmsg})
            return
        if fault is not None and fault.status is not None:
            self._reply(fault.status, {"errcode": -1, "errmsg": "system error"})
            return
        robot._record(Post(group, key, body, raw, dict(self.headers.items())))
        if fault is not None and fault.delay:
            robot._closing.wait(fault.delay)
        if fault is not None and fault.drop:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self._reply(200, {"errcode": 0, "errmsg": "ok"})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timed out) before the reply
            self.close_connection = True

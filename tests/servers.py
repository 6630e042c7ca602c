"""Throwaway Redis and PostgreSQL servers on spare loopback ports, for fault tests.

Fault tests stop, kill and restart the servers they talk to. Doing that to the shared servers on
5432/6379 would disturb every other test (and whatever else uses them), so each fault test starts
its own instance here instead: a ``redis-server`` with no persistence, or a private PostgreSQL
cluster made with ``initdb``, both listening on 127.0.0.1 only, on a port that stays the same
across restarts.

The servers are child processes of the test process, not daemons: ``stop()`` and ``kill()`` wait
for them, so a server is fully down (connections refused) when they return, and a killed
postmaster leaves no zombie behind to block the next start (its pid stays in ``postmaster.pid``,
and PID 1 in a container often reaps nothing). Every started instance is also stopped at exit, and
(when started from the main thread) asked to die with the test process, so none is left orphaned.

PostgreSQL refuses to run as root, so as root ``initdb`` and ``postgres`` run as the ``postgres``
OS user, in a directory that user owns and can reach.

The servers run on the machine's clock, like the shared ones, even when the tests do not (``make
test-clock`` preloads libfaketime): see :func:`server_environment`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

import psycopg
import redis
from psycopg import sql

HOST = "127.0.0.1"
REDIS_START_TIMEOUT = 20.0
PG_START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.65535"
_PR_SET_PDEATHSIG = 1


class ServerUnavailable(RuntimeError):
    """The server software is not installed (or cannot be run here)."""


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick for 127.0.0.1:0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- process plumbing -------------------------------------------------------------------------


_live: set[Any] = set()  # instances with a server process, shut down at exit
_tmpdirs: set[Path] = set()  # directories made under /tmp, removed at exit


@atexit.register
def _shutdown_all() -> None:
    for instance in list(_live):
        try:
            instance._shutdown_at_exit()
        except Exception:  # best effort: the interpreter is going away
            pass
    for directory in list(_tmpdirs):
        shutil.rmtree(directory, ignore_errors=True)


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send sig to the child when this thread dies.

    Only from the main thread: the signal fires when the thread that forked exits, and a worker
    thread may well exit before the test is done with its server.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def server_environment() -> dict[str, str]:
    """This process's environment without a faked clock (libfaketime's preload and FAKETIME* settings).

    Under ``make test-clock`` the tests' clock is months off and every process they start inherits
    that, but a server keeps the machine's time, as the shared servers on 5432/6379 do; and
    redis-server cannot even start under libfaketime ("Unexpected recursive calls to clock_gettime()").
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    kept = [lib for lib in re.split(r"[:\s]+", env.pop("LD_PRELOAD", "")) if lib and "faketime" not in lib]
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    return env


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _open_log(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    handle.write(f"\n--- started {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
    handle.flush()
    return handle


def _end(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send sig and wait for the process to exit; SIGKILL it if it takes longer than timeout."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _children(pid: int) -> list[int]:
    """Pids of the live (non-zombie) processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            state, ppid = _proc_state(int(entry.name))
            if ppid == pid and state not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _proc_state(pid: int) -> tuple[str, int]:
    """(state letter, parent pid) of pid from /proc; ("X", 0) when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X", 0
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parens
    return fields[0], int(fields[1])


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait for pids to exit (zombies count as gone); SIGKILL whatever is left after timeout."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _proc_state(pid)[0] not in ("Z", "X")]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- Redis ------------------------------------------------------------------------------------


class RedisInstance:
    """A redis-server on 127.0.0.1:port with no persistence, run as a child process.

    ``with RedisInstance(tmp) as r:`` starts it and stops it on exit.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port if port is not None else free_port()
        self.log_path = self.workdir / f"redis-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (a no-op when it runs) and wait until it answers PING."""
        if self.running:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not on PATH; install the Debian package redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with _open_log(self.log_path) as log:
            self._proc = subprocess.Popen(
                self._command(binary),
                cwd=self.workdir,
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGTERM),
            )
        _live.add(self)
        self._wait_ready()

    def stop(self) -> None:
        """SIGTERM, wait (SIGKILL after STOP_TIMEOUT); connections are refused once it returns."""
        self._halt(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as a crash would; waits until the process is gone."""
        self._halt(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, db: int = 0, **kwargs: Any) -> redis.Redis:
        """A redis-py client for this server; close it (or use it in a with block)."""
        return redis.Redis(host=HOST, port=self.port, db=db, **kwargs)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--logfile", "",
        ]  # fmt: skip

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while True:
            if not self.running:
                self._fail("redis-server exited during start-up")
            if self._ping():
                return
            if time.monotonic() > deadline:
                self.kill()
                self._fail(f"redis-server did not answer PING within {REDIS_START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _ping(self) -> bool:
        """Whether our server answers: the process id checks that it is not another one on the port."""
        try:
            with self.client(socket_connect_timeout=1, socket_timeout=1) as conn:
                return conn.ping() and conn.info("server")["process_id"] == self._proc.pid
        except redis.RedisError:
            return False

    def _fail(self, what: str) -> None:
        self._proc = None
        _live.discard(self)
        raise RuntimeError(f"{what} (port {self.port}); log {self.log_path}:\n{_log_tail(self.log_path)}")

    def _halt(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            _end(self._proc, sig, STOP_TIMEOUT)
        self._proc = None
        _live.discard(self)

    def _shutdown_at_exit(self) -> None:
        self._halt(signal.SIGTERM)


# --- PostgreSQL -------------------------------------------------------------------------------


def pg_bindir() -> Path:
    """The directory with initdb and postgres: pg_config --bindir, else the newest Debian install, else PATH."""
    for candidate in _pg_bindir_candidates():
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise ServerUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found; install the Debian package postgresql"
    )


def _pg_bindir_candidates() -> list[Path]:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return candidates


def _postgres_user() -> pwd.struct_passwd | None:
    """The OS user to run PostgreSQL as: postgres when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable(
            "running as root and there is no postgres OS user to run PostgreSQL as; "
            "install the Debian package postgresql (it creates that user)"
        ) from None


def _traversable(path: Path, uid: int, gid: int) -> bool:
    """Whether a process with uid/gid (no supplementary groups) can reach path's directory entries."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


class PostgresInstance:
    """A private PostgreSQL cluster on 127.0.0.1:port, its postmaster a child process.

    The cluster is created with initdb on the first start(). ``with PostgresInstance(tmp) as pg:``
    starts it and, on exit, stops it and removes its data directory (cleanup()).
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port if port is not None else free_port()
        self._user = _postgres_user()
        self._tmpdir: Path | None = None  # set when the cluster lives under /tmp instead of workdir
        self.basedir = self._choose_basedir()
        self.datadir = self.basedir / "data"
        self.log_path = self.basedir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL, for psycopg.connect()."""
        return f"postgresql://postgres@{HOST}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the postmaster (initdb first if need be; a no-op when it runs) and wait until it takes queries."""
        if self.running:
            return
        bindir = pg_bindir()
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(bindir)
        with _open_log(self.log_path) as log:
            self._proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(self.datadir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                **self._run_as(),
            )
        _live.add(self)
        self._wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Shut down like pg_ctl stop -m mode (smart, fast, immediate) and wait; SIGKILL after STOP_TIMEOUT."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self._proc is not None:
            children = _children(self._proc.pid)
            _end(self._proc, sig, STOP_TIMEOUT)
            _wait_gone(children, timeout=10)  # only left behind when the postmaster had to be killed
        self._proc = None
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; returns once it and its children are gone.

        The children (backends, checkpointer, ...) notice the postmaster's death and exit on their
        own; they must be gone before the next start, which refuses to reuse shared memory still
        attached to them.
        """
        if self._proc is not None:
            children = _children(self._proc.pid)  # the pid in postmaster.pid: we exec postgres directly
            self._proc.kill()
            self._proc.wait()
            _wait_gone(children, timeout=10)
        self._proc = None
        _live.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def cleanup(self) -> None:
        """Stop the server if it runs and remove the data directory (and the /tmp directory, if one was made)."""
        self.stop()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            _tmpdirs.discard(self._tmpdir)
        else:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _choose_basedir(self) -> Path:
        """A directory the server's user owns and can reach, with a short enough path for its socket."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = self.workdir / f"pg-{self.port}"
        reachable = self._user is None or _traversable(self.workdir, self._user.pw_uid, self._user.pw_gid)
        if not reachable or len(str(base)) > _SOCKET_PATH_MAX:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="gridflow-pg-", dir="/tmp"))
            self._tmpdir.chmod(0o755)
            _tmpdirs.add(self._tmpdir)
            base = self._tmpdir / "pg"
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o700)
        if self._user is not None:
            os.chown(base, self._user.pw_uid, self._user.pw_gid)
        return base

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments: the server's user, a clean environment and a working directory it can reach."""
        env = {k: v for k, v in server_environment().items() if not k.startswith("PG")}
        env.update(LC_ALL="C", HOME=str(self.basedir))
        args: dict[str, Any] = {"cwd": self.basedir, "env": env}
        if self._user is not None:
            args.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return args

    def _initdb(self, bindir: Path) -> None:
        command = [str(bindir / "initdb"), "-D", str(self.datadir), "--auth=trust", "-U", "postgres"]
        command += ["--no-sync", "-E", "UTF8", "--locale=C"]
        out = subprocess.run(command, capture_output=True, text=True, check=False, **self._run_as())
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
        self._configure()

    def _configure(self) -> None:
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.basedir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:  # appending keeps the owner
            conf.write("\n# tests/servers.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with (self.datadir / "pg_hba.conf").open("w") as hba:
            hba.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + PG_START_TIMEOUT
        while True:
            if not self.running:
                self._fail("postgres exited during start-up")
            if self._accepts_queries():
                return
            if time.monotonic() > deadline:
                self.kill()
                self._fail(f"postgres did not accept connections within {PG_START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _accepts_queries(self) -> bool:
        """Whether our server takes queries: the data directory checks that it is not another one on the port."""
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and Path(row[0]) == self.datadir

    def _fail(self, what: str) -> None:
        self._proc = None
        _live.discard(self)
        raise RuntimeError(f"{what} (port {self.port}); log {self.log_path}:\n{_log_tail(self.log_path)}")

    def _shutdown_at_exit(self) -> None:
        self.stop(mode="immediate")

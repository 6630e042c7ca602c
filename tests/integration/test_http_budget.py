"""The HTTP channels' time budget covers the whole exchange: a server that answers a byte at a time,
each byte well within a socket timeout, is still cut off once the budget is spent (within a tenth)."""

from __future__ import annotations

import socket
import threading
import time

from notifications.channels import _http


def _trickling_server(stop: threading.Event) -> tuple[str, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(65536)  # the request
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" * 10:
                    if stop.wait(0.05):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/send", thread


def test_a_trickling_answer_is_cut_off_when_the_budget_is_spent():
    stop = threading.Event()
    url, thread = _trickling_server(stop)
    started = time.monotonic()
    try:
        result = _http.post(url, b"{}", {"Content-Type": "application/json"}, timeout=0.5)
    finally:
        elapsed = time.monotonic() - started
        stop.set()
        thread.join(timeout=5)
    assert isinstance(result, _http.SendResult) and not result.ok and result.unknown, result
    assert "within 0.5s" in (result.error or "")
    assert 0.45 <= elapsed < 0.5 * 1.1 + 0.1, elapsed

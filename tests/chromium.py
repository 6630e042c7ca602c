"""Headless Chromium for tests: find it, and screenshot (or print) a local HTML file.

Chromium runs with a throwaway profile, no sandbox (tests often run as root in a container) and a
bound on its run time; in its own process group, so a hung browser is killed with every helper
process it started. CI needs Debian's ``chromium`` and ``fonts-noto-cjk`` (without a CJK font every
Chinese character is drawn as a box).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 60.0  # seconds
A4_WIDTH, A4_HEIGHT = 794, 1123  # CSS pixels of an A4 page at 96 dpi
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class ChromiumFailed(RuntimeError):
    """Chromium exited with an error, timed out, or wrote no file."""


def chromium_path() -> str | None:
    """The first Chromium (or Chrome) on PATH, or None."""
    return next((path for name in NAMES if (path := shutil.which(name))), None)


def require_chromium() -> str:
    """Chromium's path; skip the test when it is missing (fail under CI, where it must be installed)."""
    path = chromium_path()
    if path is None:
        message = f"no Chromium on PATH (looked for {', '.join(NAMES)})"
        if IN_CI:
            pytest.fail(f"{message}; CI needs it: apt-get install chromium", pytrace=False)
        pytest.skip(f"{message}: install Debian's chromium (apt-get install chromium)")
    return path


def require_cjk_font() -> None:
    """Skip (fail under CI) unless fontconfig knows a font with Chinese glyphs: without one every
    character of a posting is drawn as a box, and the screenshot still looks busy enough to pass."""
    fc_list = shutil.which("fc-list")
    found = fc_list and subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    if not found:
        message = "no font with Chinese glyphs (fc-list :lang=zh is empty)"
        if IN_CI:
            pytest.fail(f"{message}; CI needs it: apt-get install fonts-noto-cjk", pytrace=False)
        pytest.skip(f"{message}: install Debian's fonts-noto-cjk")


def render_png(html_path: Path | str, png_path: Path | str, width: int = A4_WIDTH, height: int = A4_HEIGHT) -> None:
    """Screenshot ``html_path`` as Chromium shows it in a ``width`` × ``height`` window."""
    png = Path(png_path).resolve()
    _run(Path(html_path), [f"--window-size={width},{height}", f"--screenshot={png}", "--hide-scrollbars"], png)


def render_pdf(html_path: Path | str, pdf_path: Path | str) -> None:
    """Print ``html_path`` to PDF the way a browser prints it (the page's own @page size and margins)."""
    pdf = Path(pdf_path).resolve()
    _run(Path(html_path), [f"--print-to-pdf={pdf}", "--no-pdf-header-footer"], pdf)


def _run(html_path: Path, options: list[str], out: Path) -> None:
    binary = chromium_path()
    if binary is None:
        raise ChromiumFailed(f"no Chromium on PATH (looked for {', '.join(NAMES)})")
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridflow-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            *options,
            html_path.resolve().as_uri(),
        ]
        returncode, stderr = _bounded(command)
    if returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise ChromiumFailed(f"chromium exited with {returncode} and wrote no {out.name}:\n{_tail(stderr)}")


def _bounded(command: list[str]) -> tuple[int, str]:
    """Run ``command`` for at most TIMEOUT seconds; on timeout kill its whole process group."""
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    ) as proc:
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            raise ChromiumFailed(f"chromium did not finish in {TIMEOUT:.0f} s:\n{_tail(stderr)}") from None
    return proc.returncode, stderr.decode("utf-8", errors="replace")


def _tail(stderr: str | bytes, lines: int = 20) -> str:
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    return "\n".join(text.splitlines()[-lines:]) or "(nothing on stderr)"

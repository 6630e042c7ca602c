"""The CLI's consoles: their width is read when they print, not when they are made."""

from __future__ import annotations

import pytest
from rich.table import Table

from gridflow.cli.common import SafeConsole


def test_the_width_follows_columns_as_set_when_printing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The consoles are made at import; a runner in the same process (Typer's, the README tour's) sets
    # COLUMNS per command later. A width frozen at import made tables wrap at 80 under pytest-xdist,
    # whose workers start with COLUMNS=80.
    monkeypatch.setenv("COLUMNS", "80")
    console = SafeConsole(record=True, force_terminal=False)
    monkeypatch.setenv("COLUMNS", "120")
    assert console.width == 120
    table = Table("编号 code", "title")
    table.add_row("SL-2026-000001", "x" * 90)
    console.print(table)
    assert max(len(line) for line in console.export_text().splitlines()) > 80


def test_an_explicit_width_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert SafeConsole(width=70).width == 70

"""The sample postings as Chromium draws them: first A4 page as PNG, the whole posting as PDF.

The files stay in ``<repo>/test-artifacts/`` for a person (or CI's artefact upload) to look at:
``posting-2026Q4.png``, ``posting-2026Q4-v2.png`` (the corrected version), ``annual-2026.png``,
each beside the HTML it was made from, and ``posting-2026Q4.pdf``, the posting as it prints.
Without Chromium or a Chinese font (fonts-noto-cjk) the tests skip locally and fail under CI.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from engine.publication.render import render
from engine.publication.sample import sample_document
from tests.chromium import A4_HEIGHT, A4_WIDTH, render_pdf, render_png, require_chromium, require_cjk_font

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 20_000  # a blank or glyph-less page compresses to far less
A4_POINTS = (595, 842)  # PDF MediaBox of an A4 page, rounded

POSTINGS = [
    pytest.param("posting-2026Q4", "quarterly", 1, id="quarterly"),
    pytest.param("posting-2026Q4-v2", "quarterly", 2, id="quarterly, corrected"),
    pytest.param("annual-2026", "annual", 1, id="annual"),
]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    require_chromium()
    require_cjk_font()
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def write_html(folder: Path, name: str, kind: str, version: int) -> Path:
    html = folder / f"{name}.html"
    html.write_text(render(sample_document(kind, version)).html, encoding="utf-8")
    return html


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    length, kind, width, height = struct.unpack(">I4sII", head[8:24])
    assert kind == b"IHDR" and length == 13, f"{path.name}: no IHDR chunk first"
    return width, height


def assert_drawn(path: Path) -> None:
    """Not blank: a size only real text and lines reach; with Pillow, also dark text and the red accents."""
    assert path.stat().st_size > MIN_PNG_BYTES, f"{path.name}: {path.stat().st_size} bytes, the page looks blank"
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colours, f"{path.name}: no colours"
    assert any(r + g + b < 150 for _, (r, g, b) in colours), f"{path.name}: no dark (text) pixels"
    assert any(r > 150 and g < 80 and b < 80 for _, (r, g, b) in colours), f"{path.name}: no red pixels"


@pytest.mark.parametrize(("name", "kind", "version"), POSTINGS)
def test_the_first_page_renders_to_a_png(artifacts, name, kind, version):
    html = write_html(artifacts, name, kind, version)
    png = artifacts / f"{name}.png"
    render_png(html, png, width=A4_WIDTH, height=A4_HEIGHT)  # raises unless chromium exits 0 with a file
    assert png_size(png) == (A4_WIDTH, A4_HEIGHT)
    assert_drawn(png)


def test_the_posting_prints_on_a4_pages(artifacts):
    html = write_html(artifacts, "posting-2026Q4", "quarterly", 1)
    pdf = artifacts / "posting-2026Q4.pdf"
    render_pdf(html, pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", data)
    boxes = {tuple(round(float(n)) for n in box.split()) for box in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", data)}
    assert len(pages) >= 3, "66 grids, 69 workers and 6 villages need several pages"
    assert boxes == {(0, 0, *A4_POINTS)}, f"pages are not A4 portrait: {boxes}"

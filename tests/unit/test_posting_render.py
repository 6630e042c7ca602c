"""A posting document → HTML page, CSV, canonical JSON and hash (engine.publication.render).

The page is read back with the stdlib's HTML parser (tables as rows of cell texts), the chart with
``xml.etree``, the CSV with the ``csv`` module: each artefact must carry every figure of the
document, escape every value, and reach for nothing outside itself.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from engine.errors import GridflowError
from engine.publication.render import (
    Artefacts,
    DocumentInvalid,
    canonical_json,
    chinese_numeral,
    render,
    trend_svg,
)
from engine.publication.sample import sample_document

SVG = "{http://www.w3.org/2000/svg}"
BOM = "\ufeff"
INJECTION = '<script>alert("网格")</script>'


@pytest.fixture(scope="module")
def doc() -> dict:
    return sample_document()


@pytest.fixture(scope="module")
def out(doc) -> Artefacts:
    return render(doc)


class Page(HTMLParser):
    """The page's tables as lists of rows of cell texts, and its text outside tags."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def rows(self) -> list[list[str]]:
        return [row for table in self.tables for row in table]


def svg_of(html: str) -> ET.Element:
    markup = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert markup, "the page has no inline <svg>"
    return ET.fromstring(markup.group(0))


def classed(svg: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter(SVG + tag) if e.get("class") == cls]


def csv_blocks(text: str) -> list[list[list[str]]]:
    assert text.startswith(BOM)
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text.removeprefix(BOM), newline="")):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def without_gap(doc: dict, month: int) -> dict:
    changed = copy.deepcopy(doc)
    changed["trend"]["points"][month]["value"] = None
    return changed


# --- the page ---------------------------------------------------------------------------------


def test_the_page_shows_every_key_figure(doc, out):
    text = "".join(Page(out.html).text)
    for figure in doc["key_figures"]:
        assert figure["label"] in text and figure["value"] in text and figure["detail"] in text


def test_the_page_shows_every_ranking_row_cell_for_cell(doc, out):
    rows = Page(out.html).rows()
    for table in [*doc["sections"], *doc["extra_sections"]]:
        assert table["columns"] in rows, table["title"]
        for row in table["rows"]:
            assert row in rows, f"{table['title']}: {row}"


def test_ranking_rows_are_marked_as_the_document_says(doc, out):
    section = doc["sections"][0]
    marked = re.findall(r'<tr class="(red|black)"><td>[^<]*</td><td>([^<]*)</td>', out.html)
    expected = {(mark, section["rows"][int(i)][1]) for i, mark in section["highlight"].items()}
    assert expected <= set(marked)
    assert "红榜" in out.html and "黑榜" in out.html


def test_the_red_and_black_lists_are_on_the_page(doc, out):
    rows = Page(out.html).rows()
    for entry in doc["red_list"] + doc["black_list"]:
        assert [entry["group"], entry["name"], entry["score"], entry["grade"]] in rows


def test_the_header_names_period_version_time_rules_and_objection_window(doc, out):
    text = "".join(Page(out.html).text)
    assert doc["title"] in text
    for value in (doc["period_label"], "第1版", doc["published_at"], doc["rules"], doc["objection_contact"]):
        assert value in text
    assert f"公示期至 {doc['objection_until']}" in text
    assert "对公示内容有异议的，请于公示期内向" in text
    assert "@page" in out.html and "size: A4" in out.html


def test_the_footer_shows_the_hash_short_with_the_full_hash_in_a_title(out):
    short = out.content_hash[:16]
    assert f'<span class="hash" title="{out.content_hash}">{short}</span>' in out.html
    assert "校验码" in out.html and "本公示由胜利乡网格化服务管理系统生成" in out.html


def test_the_page_reaches_for_nothing_outside_itself(out):
    html = out.html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    for forbidden in ("<script", "<link", "<img", "<iframe", "<object", "@import", "url(", "@font-face"):
        assert forbidden not in html, forbidden


def test_a_version_2_posting_shows_what_was_corrected():
    doc = sample_document(version=2)
    out = render(doc)
    assert doc["changes"] and doc["change_reason"]
    assert "本版更正说明" in out.html and doc["change_reason"] in out.html and "第2版（更正）" in out.html
    table = next(t for t in Page(out.html).tables if t and t[0] == ["对象", "项目", "原值", "新值"])
    subject = ""
    for change, row in zip(doc["changes"], table[1:], strict=True):
        subject = row[0] if len(row) == 4 else subject  # a subject's first row carries it (rowspan)
        assert [subject, *row[-3:]] == [change["subject"], change["what"], change["before"], change["after"]]


def test_a_first_version_has_no_correction_box(out):
    assert "本版更正说明" not in out.html


def test_the_annual_summary_has_twelve_months_and_no_objection_window():
    doc = sample_document("annual")
    out = render(doc)
    svg = svg_of(out.html)
    assert [e.text for e in classed(svg, "text", "month")] == [f"{m}月" for m in range(1, 13)]
    assert doc["objection_until"] is None
    assert "公示期至" not in out.html and "对公示内容有异议" not in out.html
    rows = Page(out.html).rows()
    for table in doc["extra_sections"]:
        assert all(row in rows for row in table["rows"]), table["title"]


def test_every_value_is_escaped(doc):
    evil = copy.deepcopy(doc)
    evil["title"] = INJECTION
    evil["sections"][0]["rows"][0][1] = INJECTION
    evil["red_list"][0]["name"] = INJECTION
    evil["key_figures"][0]["detail"] = INJECTION
    evil["trend"]["title"] = INJECTION
    evil["trend"]["points"][0]["label"] = INJECTION
    evil["notes"][0] = INJECTION
    html = render(evil).html
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;") >= 7
    assert INJECTION in "".join(Page(html).text)  # shown as text, as written
    svg_of(html)  # still well-formed XML


# --- the chart --------------------------------------------------------------------------------


def test_the_chart_is_svg_with_one_marker_per_month_with_data(doc):
    svg = ET.fromstring(trend_svg(doc["trend"]))
    points = doc["trend"]["points"]
    assert svg.tag == SVG + "svg" and svg.get("viewBox") == "0 0 640 260"
    assert len(classed(svg, "circle", "point")) == len(points) == 3
    assert [e.text for e in classed(svg, "text", "value")] == [f"{p['value']:.2f}" for p in points]
    assert [e.text for e in classed(svg, "text", "month")] == [p["label"] for p in points]


def test_the_chart_has_gridlines_at_0_25_50_75_100(doc):
    svg = ET.fromstring(trend_svg(doc["trend"], width=400, height=200))
    labels = [e.text for e in svg.iter(SVG + "text") if (e.text or "").endswith("%") and e.get("class") is None]
    assert labels == ["0%", "25%", "50%", "75%", "100%"]
    assert svg.get("width") == "400" and svg.get("height") == "200"


@pytest.mark.parametrize(
    ("missing", "runs"),
    [
        pytest.param([1], 0, id="middle month: no line, two lone markers"),
        pytest.param([0], 1, id="first month"),
        pytest.param([], 1, id="every month"),
        pytest.param([0, 1, 2], 0, id="no month"),
    ],
)
def test_a_month_without_data_is_a_gap_written_as_no_data(doc, missing, runs):
    trend = copy.deepcopy(doc["trend"])
    for month in missing:
        trend["points"][month]["value"] = None
    svg = ET.fromstring(trend_svg(trend))
    assert len(classed(svg, "circle", "point")) == 3 - len(missing)
    assert [e.text for e in classed(svg, "text", "no-data")] == ["无数据"] * len(missing)
    assert len(classed(svg, "polyline", "line")) == runs


def test_a_gap_splits_the_line():
    points = [{"label": f"{m}月", "value": v} for m, v in enumerate([70, 72, None, 75, 76, 78], 1)]
    svg = ET.fromstring(trend_svg({"title": "月度按期结案率", "unit": "%", "points": points}))
    lines = [e.get("points").split() for e in classed(svg, "polyline", "line")]
    assert [len(line) for line in lines] == [2, 3]


def test_higher_values_are_drawn_higher(doc):
    svg = ET.fromstring(
        trend_svg({"title": "t", "unit": "%", "points": [{"label": "a", "value": v} for v in (0, 50, 100)]})
    )
    ys = [float(e.get("cy")) for e in classed(svg, "circle", "point")]
    assert ys[0] > ys[1] > ys[2]


# --- CSV and JSON -----------------------------------------------------------------------------


def test_the_csv_has_a_bom_and_one_block_per_table(doc, out):
    blocks = csv_blocks(out.csv)
    tables = [*doc["sections"], *doc["extra_sections"]]
    ranking = blocks[1 : 1 + len(tables)]
    for table, block in zip(tables, ranking, strict=True):
        assert block[0] == ["栏目", *table["columns"]]
        assert block[1:] == [[table["title"], *row] for row in table["rows"]]


def test_the_csv_carries_the_head_figures_and_lists(doc, out):
    blocks = csv_blocks(out.csv)
    assert blocks[0] == [
        ["标题", "期间", "版本", "发布时间", "公示期至", "校验码"],
        [doc["title"], doc["period_label"], "第1版", doc["published_at"], doc["objection_until"], out.content_hash],
    ]
    figures = next(b for b in blocks if b[0] == ["关键指标", "数值", "说明"])
    assert figures[1:] == [[f["label"], f["value"], f["detail"]] for f in doc["key_figures"]]
    boards = next(b for b in blocks if b[0] == ["榜单", "类别", "名称", "得分", "等级"])
    red = [["红榜", e["group"], e["name"], e["score"], e["grade"]] for e in doc["red_list"]]
    black = [["黑榜", e["group"], e["name"], e["score"], e["grade"]] for e in doc["black_list"]]
    assert boards[1:] == red + black
    assert not any(b[0][0] == "更正" for b in blocks)


def test_the_csv_of_a_corrected_posting_lists_the_changes():
    doc = sample_document(version=2)
    changes = next(b for b in csv_blocks(render(doc).csv) if b[0][0] == "更正")
    assert changes[1:] == [["第2版", c["subject"], c["what"], c["before"], c["after"]] for c in doc["changes"]]


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+86 138", "'+86 138"),
        ("-1.50", "-1.50"),
        ("-12.5%", "-12.5%"),
        ("马营台村第1单元格", "马营台村第1单元格"),
    ],
)
def test_a_csv_cell_that_reads_as_a_formula_is_neutralised(doc, name, cell):
    changed = copy.deepcopy(doc)
    changed["sections"][0]["rows"][0][1] = name
    block = csv_blocks(render(changed).csv)[1]
    assert block[1][2] == cell


def test_the_json_is_canonical_and_round_trips(doc, out):
    assert json.loads(out.json) == doc
    assert out.json == json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n" == canonical_json(doc)
    assert "胜利乡" in out.json  # UTF-8 text, not \u escapes


def test_the_hash_is_the_json_sha256_and_stable(doc, out):
    again = render(copy.deepcopy(doc))
    assert out.content_hash == again.content_hash == hashlib.sha256(out.json.encode("utf-8")).hexdigest()
    assert out == again
    shuffled = dict(reversed(list(doc.items())))
    assert render(shuffled).content_hash == out.content_hash  # key order does not matter


def test_the_hash_changes_when_a_figure_changes(doc, out):
    changed = copy.deepcopy(doc)
    changed["key_figures"][1]["value"] = str(int(changed["key_figures"][1]["value"]) + 1)
    assert render(changed).content_hash != out.content_hash
    cell = copy.deepcopy(doc)
    cell["sections"][2]["rows"][5][6] = "0.00"
    assert render(cell).content_hash != out.content_hash


def test_rendering_leaves_the_document_alone(doc):
    before = canonical_json(doc)
    render(doc)
    assert canonical_json(doc) == before


# --- the contract -----------------------------------------------------------------------------


def _broken(change) -> dict:
    doc = sample_document()
    change(doc)
    return doc


BROKEN = [
    pytest.param(lambda d: d.pop("title"), ["'title' is a required property"], id="missing key"),
    pytest.param(lambda d: d.update(kind="monthly"), ["document.kind: 'monthly' is not one of"], id="kind"),
    pytest.param(lambda d: d.update(version=0), ["document.version: 0 is less than"], id="version 0"),
    pytest.param(lambda d: d.update(colour="red"), ["'colour' was unexpected"], id="unknown key"),
    pytest.param(
        lambda d: d["key_figures"][0].update(value=996),
        ["document.key_figures[0].value: 996 is not"],
        id="number, not text",
    ),
    pytest.param(
        lambda d: d["trend"]["points"][1].update(value=101), ["document.trend.points[1].value: 101"], id="over 100"
    ),
    pytest.param(lambda d: d["trend"]["points"][1].update(value=float("nan")), ["NaN is not a value"], id="NaN"),
    pytest.param(
        lambda d: d["sections"][1]["rows"][0].pop(),
        ["document.sections[1].rows[0]: 8 cells for 9 columns"],
        id="short row",
    ),
    pytest.param(
        lambda d: d["sections"][1].update(highlight={"7": "red"}),
        ["document.sections[1].highlight: row 7 does not exist (3 rows)"],
        id="highlight past the end",
    ),
    pytest.param(
        lambda d: d["sections"][0]["highlight"].update({"1": "gold"}),
        ["'gold' is not one of ['red', 'black']"],
        id="highlight colour",
    ),
    pytest.param(
        lambda d: (d.pop("notes"), d["red_list"][0].pop("grade")),
        ["'notes' is a required property", "document.red_list[0]: 'grade' is a required property"],
        id="every problem at once",
    ),
]


@pytest.mark.parametrize(("change", "messages"), BROKEN)
def test_a_document_that_breaks_the_contract_is_refused_with_every_problem(change, messages):
    with pytest.raises(DocumentInvalid) as caught:
        render(_broken(change))
    assert isinstance(caught.value, GridflowError)
    assert len(caught.value.problems) == len(messages)
    for message in messages:
        assert message in str(caught.value)


def test_optional_table_parts_may_be_left_out(doc):
    plain = copy.deepcopy(doc)
    for table in plain["sections"]:
        table.pop("note", None)
        table.pop("highlight", None)
    html = render(plain).html
    assert '<tr class="red">' not in html and "案件数少于3件" not in html


def test_empty_lists_and_tables_still_render(doc):
    empty = copy.deepcopy(doc)
    empty.update(red_list=[], black_list=[], notes=[])
    empty["sections"][0].update(rows=[], highlight={})
    page = Page(render(empty).html)
    assert ["无"] in page.rows()


# --- the sample -------------------------------------------------------------------------------


def test_the_sample_is_the_same_every_time():
    assert canonical_json(sample_document()) == canonical_json(sample_document())
    assert canonical_json(sample_document("annual")) == canonical_json(sample_document("annual"))


def test_the_sample_lists_are_the_rows_its_tables_mark():
    doc = sample_document()
    marked = {
        (mark, table["rows"][int(i)][1]) for table in doc["sections"] for i, mark in table.get("highlight", {}).items()
    }
    assert marked == {("red", e["name"]) for e in doc["red_list"]} | {("black", e["name"]) for e in doc["black_list"]}


def test_the_sample_grids_add_up_to_the_township():
    doc = sample_document()
    grids = doc["sections"][0]["rows"] + doc["sections"][1]["rows"]
    villages = doc["sections"][3]["rows"]
    cases = doc["key_figures"][0]
    assert cases["label"] == "立案数" and cases["value"] == "996"
    assert sum(int(row[3]) for row in grids) == 996
    assert sum(int(row[3]) for row in villages) + sum(int(row[3]) for row in doc["sections"][1]["rows"]) == 996


def test_the_sample_correction_changes_only_what_the_objection_touched():
    first, second = sample_document(), sample_document(version=2)
    assert first["changes"] == [] and first["change_reason"] == ""
    subjects = {c["subject"] for c in second["changes"]}
    assert subjects == {"全乡", "马营台村第6单元格", "吴佳怡", "马营台村"}
    assert second["key_figures"][0]["value"] == "995"


def test_there_is_no_sample_of_an_unknown_kind():
    with pytest.raises(ValueError, match="no sample 'monthly'"):
        sample_document("monthly")


@pytest.mark.parametrize(("n", "text"), [(1, "一"), (4, "四"), (10, "十"), (11, "十一"), (20, "二十"), (35, "三十五")])
def test_headings_are_numbered_in_chinese(n, text):
    assert chinese_numeral(n) == text

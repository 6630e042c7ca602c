"""The notice templates: every event, every part, renders with its sample params."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from notifications.render import PARTS, TEMPLATES, Renderer
from notifications.samples import SAMPLE_NAME, SAMPLES

SH = ZoneInfo("Asia/Shanghai")
SMS_PART = 70  # characters in one Chinese SMS part
WITH_URL = {"monthly_ranking", "quarterly_posting", "annual_summary"}  # a link makes these SMS longer than one part


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(SH)


def case_code(event: str) -> str | None:
    params = SAMPLES[event]
    if "case" in params:
        return params["case"]
    items = params.get("items")
    return items[0]["case"] if items else None


def test_every_event_with_templates_has_a_sample_and_every_sample_has_templates(renderer):
    assert renderer.events() == sorted(SAMPLES)


@pytest.mark.parametrize("event", sorted(SAMPLES))
def test_every_part_renders_with_the_sample(renderer, event):
    out = renderer.render(event, SAMPLES[event], SAMPLE_NAME)
    for part in PARTS:
        text = getattr(out, part)
        assert text, f"{event} {part} is empty"
        assert "None" not in text, f"{event} {part}: {text}"
        assert "{{" not in text and "{%" not in text, f"{event} {part}: {text}"
        assert "\n\n\n" not in text, f"{event} {part} has a run of blank lines"
    assert "\n" not in out.subject
    assert out.html.startswith("<!doctype html>")
    assert "<html" in out.html and 'lang="zh-CN"' in out.html and 'name="viewport"' in out.html
    assert out.sms.startswith("【胜利乡网格中心】") and "\n" not in out.sms
    assert out.text.startswith("【胜利乡网格中心】" + SAMPLE_NAME)
    if code := case_code(event):
        assert code in out.text and code in out.sms and code in out.markdown


@pytest.mark.parametrize("event", sorted(set(SAMPLES) - WITH_URL))
def test_the_sample_sms_fits_one_part(renderer, event):
    sms = renderer.render(event, SAMPLES[event], SAMPLE_NAME).sms
    assert len(sms) <= SMS_PART, f"{event}: {len(sms)} characters: {sms}"


@pytest.mark.parametrize(
    ("event", "changes", "expect", "absent"),
    [
        ("sla_reminder", {"share": None}, "即将到期", "None"),
        ("sla_breach", {"due_at": None, "limit": ""}, "—", "（）"),
        ("sla_breach", {"limit": "30m"}, "30分钟", "30m"),
        ("sla_escalated", {"level": 1, "mark": "yellow_card"}, "黄牌", "红牌"),
        ("sla_escalated", {"level": 3, "mark": "supervision_order"}, "督办", "红牌"),
        ("sla_escalated", {"level": 2, "mark": None}, "第 2 级", "None"),
        ("sla_reminder", {"grid_name": "马营台村第1单元格"}, "马营台村第1单元格", "mayingtai-01"),
        ("case_assigned", {"assignee_name": SAMPLE_NAME}, "派遣给您", "至 陈佳"),
        ("digest", {"count": 3}, "SL-2026-000137", "等3件"),
        ("monthly_ranking", {"url": ""}, "第1名", "http"),
        ("monthly_ranking", {"rows": []}, "暂无排名", "第1名"),
        ("quarterly_posting", {"url": "", "red": [], "black": []}, "红榜：无", "http"),
    ],
)
def test_optional_values_that_are_present_but_empty(renderer, event, changes, expect, absent):
    out = renderer.render(event, {**SAMPLES[event], **changes}, SAMPLE_NAME)
    assert expect in out.text + out.markdown
    for part in PARTS:
        assert absent not in getattr(out, part), f"{event} {part}"
        assert "None" not in getattr(out, part)


@pytest.mark.parametrize(
    ("event", "extra", "expect", "absent"),
    [
        ("case_received", {}, "已受理登记", "上报时间"),
        ("case_assigned", {"assignee_name": "安怡萱"}, "请及时签收", "截止"),
        ("case_resolved", {}, "已处置完毕", "办结时间"),
    ],
)
def test_a_step_notice_renders_with_only_the_case_params(renderer, event, extra, expect, absent):
    """The formatted times (reported_local, resolved_local, due_at) are shown when passed, left out when not."""
    params = {"case": "SL-2026-000123", "title": "马营台村1社供水管道破裂", "grid": "mayingtai-01", "status": "x"}
    out = renderer.render(event, {**params, **extra}, SAMPLE_NAME)
    assert expect in out.text
    for part in PARTS:
        assert absent not in getattr(out, part), f"{event} {part}"
        assert "None" not in getattr(out, part) and "—" not in getattr(out, part)


def test_the_own_row_of_a_ranked_person_is_named(renderer):
    out = renderer.render("monthly_ranking", SAMPLES["monthly_ranking"], "王红梅")
    assert "您本月第2名" in out.text and "您第2名" in out.sms


def test_a_truncated_digest_says_how_many_in_all(renderer):
    out = renderer.render("digest", SAMPLES["digest"], SAMPLE_NAME)
    assert "等5件" in out.text and "等5件" in out.markdown and "等5件" in out.html


def test_a_missing_param_is_an_error_not_an_empty_hole(renderer):
    params = {k: v for k, v in SAMPLES["sla_breach"].items() if k != "title"}
    with pytest.raises(UndefinedError):
        renderer.render("sla_breach", params, SAMPLE_NAME)


def test_html_escapes_the_values_and_text_parts_do_not(renderer):
    title = '<script>alert("x")</script>&'
    out = renderer.render("case_assigned", {**SAMPLES["case_assigned"], "title": title}, SAMPLE_NAME)
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in out.html
    assert title in out.text and "<script>" in out.subject


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ (1).__class__.__subclasses__() }}"],
)
def test_the_sandbox_keeps_templates_away_from_python_internals(source):
    with pytest.raises(SecurityError):
        Renderer(SH).env.from_string(source).render()


def test_no_template_carries_a_phone_or_id_number():
    number = re.compile(r"(?<!\d)(1[3-9]\d{9}|\d{17}[\dXx])(?!\d)")
    files = sorted((TEMPLATES / "zh-CN").iterdir())
    assert files
    for path in files:
        assert not number.search(path.read_text(encoding="utf-8")), path.name


def test_only_the_parts_asked_for_are_rendered(renderer, monkeypatch):
    made: list[str] = []
    real = renderer.part

    def counting(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(renderer, "part", counting)
    event = "sla_breach"
    whole = renderer.render(event, SAMPLES[event], SAMPLE_NAME)
    assert len(made) == len(PARTS)
    made.clear()
    sms = renderer.render(event, SAMPLES[event], SAMPLE_NAME, {"sms", "text"})
    assert sorted(made) == [f"{event}.sms.txt", f"{event}.txt"]
    assert (sms.sms, sms.text) == (whole.sms, whole.text) and sms.html == sms.subject == sms.markdown == ""


def test_every_channel_reads_only_the_parts_it_declares():
    """A channel is given only its ``parts`` (the others are ""): its code may read no other part."""
    from pathlib import Path

    from notifications.channels import console, email, sms_aliyun, sms_tencent, sms_webhook, wecom
    from notifications.channels.base import ALL_PARTS

    assert set(PARTS) == ALL_PARTS
    for module, cls in [
        (console, console.ConsoleChannel),
        (email, email.EmailChannel),
        (sms_aliyun, sms_aliyun.AliyunSmsChannel),
        (sms_tencent, sms_tencent.TencentSmsChannel),
        (sms_webhook, sms_webhook.WebhookSmsChannel),
        (wecom, wecom.WecomChannel),
    ]:
        source = Path(module.__file__).read_text(encoding="utf-8")
        read = set(re.findall(r"message\.(subject|text|html|markdown)\b", source))
        read |= {"sms"} if re.search(r"params(?:\.get\(|\[)\"sms\"|sms_text\(message\)", source) else set()
        assert read and read <= cls.parts, (cls.__name__, read - cls.parts)

"""Templates that cannot run away (engine.sandbox): every bomb stops quickly with a message naming the
template, a renderer keeps working after one, and ordinary templates render as before."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import DictLoader, StrictUndefined

from engine.sandbox import BudgetedEnvironment, Limits, TemplateRefused, TrustedEnvironment
from notifications.render import CAPS, PARTS, Renderer
from notifications.samples import SAMPLE_NAME, SAMPLES

SH = ZoneInfo("Asia/Shanghai")

BOMBS = {
    "nested loops": "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "a huge range": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "string repeat": "{{ 'a' * 10**8 }}",
    "string repeat, right": "{{ 10**9 * 'a' }}",
    "list repeat": "{{ ['a'] * 10**9 }}",
    "power": "{{ 9 ** 9 ** 9 }}",
    "big product": "{% set n = 10**70 %}{{ n * n * n * n * n }}",
    "percent width": "{{ '%0999999999d' % 1 }}",
    "format filter width": "{{ '%0999999999d'|format(1) }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "str.format nested width": "{{ '{:>{w}}'.format(1, w=10**9) }}",
    "percent star width": "{{ '%*d' % (10**9, 1) }}",
    "center": "{{ 'a'|center(10**9) }}",
    "indent": "{{ 'a\nb'|indent(10**9) }}",
    "ljust method": "{{ 'a'.ljust(10**9) }}",
    "namespace doubling": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "replace doubling": "{% set ns = namespace(s='ab') %}"
    "{% for i in range(40) %}{% set ns.s = ns.s|replace('a', 'aa')|replace('b', 'bb') %}{% endfor %}",
    "macro recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "macro doubling": "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('ab') }}",
    "output": "{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}",
    "long loop of output": "{% for i in range(1000) %}{% for j in range(1000) %}ab{% endfor %}{% endfor %}",
}


@pytest.fixture
def env() -> BudgetedEnvironment:
    return BudgetedEnvironment(loader=DictLoader({}), undefined=StrictUndefined)


def _with(env: BudgetedEnvironment, name: str, source: str) -> BudgetedEnvironment:
    env.loader = DictLoader({name: source})
    return env


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_bomb_stops_quickly_with_a_message_naming_the_template(env, kind):
    _with(env, "bomb.txt", BOMBS[kind])
    start = time.perf_counter()
    with pytest.raises(TemplateRefused, match=r"template bomb\.txt"):
        env.render("bomb.txt", {})
    assert time.perf_counter() - start < 1.5


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ (1).__class__.__subclasses__() }}"],
)
def test_attribute_walks_stay_refused(env, source):
    from jinja2.exceptions import SecurityError

    _with(env, "walk.txt", source)
    with pytest.raises(SecurityError):
        env.render("walk.txt", {})


def test_ordinary_arithmetic_formatting_and_loops_still_work(env):
    source = (
        "{% set ns = namespace(total=0) %}{% for i in range(100) %}{% set ns.total = ns.total + i %}{% endfor %}"
        "{{ ns.total }} {{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format('ab') }} {{ 'ab' * 3 }} {{ 2 ** 10 }} "
        "{{ 1733000000|string|length }} {{ '%d'|format(1733000000) }} {{ 'x'|center(9) }} "
        "{{ '%d件' % 1733000000 }} {{ '{:,}'.format(1733000000) }}"
    )
    _with(env, "ok.txt", source)
    assert (
        env.render("ok.txt", {}) == "4950 003.1     ab ababab 1024 10 1733000000     x     1733000000件 1,733,000,000"
    )


def test_a_part_stops_at_its_cap(env):
    _with(env, "long.txt", "{% for i in range(100) %}0123456789{% endfor %}")
    assert len(env.render("long.txt", {}, cap=1000)) == 1000
    with pytest.raises(TemplateRefused, match="more than 999 characters"):
        env.render("long.txt", {}, cap=999)


def test_the_budget_is_per_render_and_the_trace_of_the_caller_is_restored(env):
    _with(env, "bomb.txt", BOMBS["nested loops"])
    seen: list[str] = []

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        seen.append(event)
        return None

    sys.settrace(tracer)
    try:
        with pytest.raises(TemplateRefused):
            env.render("bomb.txt", {})
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    _with(env, "ok.txt", "{% for i in range(1000) %}{% endfor %}done")
    for _ in range(3):
        assert env.render("ok.txt", {}) == "done"


def test_the_limits_are_settings_of_the_environment():
    env = BudgetedEnvironment(loader=DictLoader({"t": "{% for i in range(50) %}{% endfor %}"}), limits=Limits(steps=20))
    with pytest.raises(TemplateRefused, match="more than 20 steps"):
        env.render("t", {})


def test_a_bomb_in_a_thread_stops_and_the_thread_can_render_again():
    """The threads pool of ``gridflow up``: no signal, no Celery time limit; the budget still holds."""
    env = BudgetedEnvironment(loader=DictLoader({"bomb": BOMBS["a huge range"], "ok": "ok"}))
    results: list[str] = []

    def work() -> None:
        for name in ("bomb", "ok"):
            try:
                results.append(env.render(name, {}))
            except TemplateRefused as exc:
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert sorted(results) == ["TemplateRefused", "TemplateRefused", "ok", "ok"]


def _override(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "zh-CN").mkdir(parents=True)
    for name, text in files.items():
        (tmp_path / "zh-CN" / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_an_overridden_sms_longer_than_five_parts_is_refused(tmp_path):
    renderer = Renderer(SH, override=_override(tmp_path, {"sla_breach.sms.txt": "{{ title }}" + "超" * 400}))
    with pytest.raises(TemplateRefused, match=r"sla_breach\.sms\.txt makes 4\d\d characters; a sms part carries 335"):
        renderer.render("sla_breach", SAMPLES["sla_breach"], SAMPLE_NAME)
    assert CAPS["sms"] == 335


def test_wecom_markdown_is_capped_in_bytes(tmp_path):
    renderer = Renderer(SH, override=_override(tmp_path, {"sla_breach.md": "网" * 1500}))
    with pytest.raises(TemplateRefused, match="4,500 bytes; WeCom carries 4,096"):
        renderer.render("sla_breach", SAMPLES["sla_breach"], SAMPLE_NAME)


def test_overrides_are_checked_at_load(tmp_path):
    good = Renderer(SH, override=_override(tmp_path / "a", {"sla_breach.sms.txt": "{{ title }}超时"}))
    assert good.check_overrides() == ["sla_breach.sms.txt"]
    broken = Renderer(SH, override=_override(tmp_path / "b", {"sla_breach.sms.txt": "{% for %}"}))
    with pytest.raises(TemplateRefused, match=r"sla_breach\.sms\.txt: TemplateSyntaxError.*line 1"):
        broken.check_overrides()
    huge = Renderer(SH, override=_override(tmp_path / "c", {"sla_breach.txt": "x" * 70_000}))
    with pytest.raises(TemplateRefused, match="70,000 bytes"):
        huge.check_overrides()


@pytest.mark.parametrize("kind", ["nested loops", "string repeat", "macro recursion", "str.format width"])
def test_an_overriding_bomb_renders_in_the_sandbox_and_is_stopped(tmp_path, kind):
    """Only the built-in templates skip the sandbox: an override of the same name is the township's input."""
    renderer = Renderer(SH, override=_override(tmp_path, {"sla_breach.sms.txt": BOMBS[kind]}))
    assert renderer.overridden == {"sla_breach.sms.txt"}
    start = time.perf_counter()
    with pytest.raises(TemplateRefused, match=r"template sla_breach\.sms\.txt (stopped|makes)"):
        renderer.render("sla_breach", SAMPLES["sla_breach"], SAMPLE_NAME, {"sms"})
    assert time.perf_counter() - start < 2
    other = renderer.render("sla_breach", SAMPLES["sla_breach"], SAMPLE_NAME, {"text"})  # not overridden
    assert other.text and other.sms == ""


def test_the_built_in_templates_render_outside_the_sandbox_and_say_the_same():
    renderer = Renderer(SH)
    assert isinstance(renderer.builtin, TrustedEnvironment) and not renderer.overridden
    for event in SAMPLES:
        fast = renderer.render(event, SAMPLES[event], SAMPLE_NAME)
        renderer.overridden = frozenset(f"{event}.{suffix}" for suffix in PARTS.values())  # every part sandboxed
        slow = renderer.render(event, SAMPLES[event], SAMPLE_NAME)
        renderer.overridden = frozenset()
        assert fast == slow, event


def test_rendering_the_built_in_templates_costs_little():
    renderer = Renderer(SH)
    start = time.perf_counter()
    for _ in range(50):
        for event in SAMPLES:
            renderer.render(event, SAMPLES[event], SAMPLE_NAME)
    per_notice_ms = (time.perf_counter() - start) * 1000 / (50 * len(SAMPLES))
    assert per_notice_ms < 5, per_notice_ms

"""The indicators (``../shared/domain/INDICATORS.md``): names, Chinese labels, formulas.

Each rate is a numerator column over a denominator column of the per-case facts
(:mod:`engine.scoring.facts`); its value is NULL when the denominator is 0. ``better``
says which way is good: a composite score takes (1 − rate) for the rates where lower is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Columns of the facts, summed per subject. One fact row is a case (case-level flags), a
# dispatch or a return (an event), or a state visit (a response or handling clock).
FACT_COLUMNS = (
    "cases",  # the case counts towards the subject in this period (alive in it)
    "reported",
    "classified",
    "voided",
    "valid_report",
    "report_decided",  # reported in the period and classified or voided by its end
    "due_to_close",
    "closed",
    "closed_on_time",
    "overdue_open",
    "dispatch_due",
    "dispatched_on_time",
    "dispatched",
    "returned",
    "response_due",
    "responded_on_time",
    "handling_due",
    "handled_on_time",
    "reworked",
    "extended",
    "suspended",
    "rated",
    "satisfied",
)


@dataclass(frozen=True)
class Indicator:
    name: str
    label: str
    kind: Literal["count", "rate", "hours"]
    numerator: str = ""
    denominator: str = ""
    better: Literal["higher", "lower"] = "higher"


_ALL = (
    Indicator("cases", "案件数", "count", "cases"),
    Indicator("reported", "上报数", "count", "reported"),
    Indicator("classified", "立案数", "count", "classified"),
    Indicator("voided", "作废数", "count", "voided"),
    Indicator("due_to_close", "应结案数", "count", "due_to_close"),
    Indicator("closed", "结案数", "count", "closed"),
    Indicator("closed_on_time", "按期结案数", "count", "closed_on_time"),
    Indicator("overdue_open", "超期数", "count", "overdue_open"),
    Indicator("dispatched", "派遣数", "count", "dispatched"),
    Indicator("returned", "回退数", "count", "returned"),
    Indicator("close_rate", "结案率", "rate", "closed", "due_to_close"),
    Indicator("on_time_close_rate", "按期结案率", "rate", "closed_on_time", "due_to_close"),
    Indicator("on_time_dispatch_rate", "按时派遣率", "rate", "dispatched_on_time", "dispatch_due"),
    Indicator("on_time_handling_rate", "按期处置率", "rate", "handled_on_time", "handling_due"),
    Indicator("rework_rate", "返工率", "rate", "reworked", "closed", "lower"),
    Indicator("return_rate", "回退率", "rate", "returned", "dispatched", "lower"),
    Indicator("extension_rate", "延期率", "rate", "extended", "classified", "lower"),
    Indicator("suspension_rate", "挂账率", "rate", "suspended", "classified", "lower"),
    Indicator("valid_report_rate", "有效上报率", "rate", "valid_report", "report_decided"),
    Indicator("response_rate", "响应率", "rate", "responded_on_time", "response_due"),
    Indicator("satisfaction_rate", "满意率", "rate", "satisfied", "rated"),
    Indicator("handling_hours_mean", "平均处置时长(工作小时)", "hours"),
    Indicator("handling_hours_median", "处置时长中位数(工作小时)", "hours"),
    Indicator("handling_hours_p90", "处置时长90分位(工作小时)", "hours"),
)
INDICATORS: dict[str, Indicator] = {i.name: i for i in _ALL}
RATES: dict[str, Indicator] = {i.name: i for i in _ALL if i.kind == "rate"}

# Which indicators each kind of subject gets: a worker as reporter is judged on what they
# report, as handler on what is dispatched to them.
_REPORTER = ("cases", "reported", "classified", "voided", "valid_report_rate")
_HANDLER_SKIP = {"reported", "valid_report_rate"}
SUBJECT_INDICATORS: dict[str, tuple[str, ...]] = {
    "township": tuple(INDICATORS),
    "village": tuple(INDICATORS),
    "grid": tuple(INDICATORS),
    "reporter": _REPORTER,
    "handler": tuple(n for n in INDICATORS if n not in _HANDLER_SKIP),
}
SUBJECT_LABELS = {"township": "乡镇", "village": "村", "grid": "网格", "reporter": "上报人", "handler": "处置人"}


@dataclass(frozen=True)
class Value:
    """One indicator of one subject: numerator, denominator (None for counts and hours), value."""

    numerator: float | None
    denominator: int | None
    value: float | None


def rate(numerator: float, denominator: int) -> Value:
    return Value(numerator, denominator, None if denominator == 0 else numerator / denominator)


def values_from_sums(sums: dict[str, float], hours: tuple[int, float | None, float | None, float | None]) -> dict:
    """All indicators from the summed fact columns and the handling-time statistics (n, mean, median, p90)."""
    out: dict[str, Value] = {}
    for ind in _ALL:
        if ind.kind == "count":
            n = int(sums.get(ind.numerator) or 0)
            out[ind.name] = Value(n, None, float(n))
        elif ind.kind == "rate":
            out[ind.name] = rate(int(sums.get(ind.numerator) or 0), int(sums.get(ind.denominator) or 0))
    n, mean, median, p90 = hours
    for name, seconds in (("mean", mean), ("median", median), ("p90", p90)):
        out[f"handling_hours_{name}"] = Value(None, n, None if seconds is None or n == 0 else seconds / 3600)
    return out

"""Masked forms of personal data, for listings, logs and postings.

``mask_id_number("51000019800101123X") == "510000********123X"`` (region kept, birth date and
sequence hidden), ``mask_phone("13800000011") == "138****0011"``, ``mask_name("张三丰") == "张**"``.
Empty values stay empty; a value too short to mask keeps nothing.
"""

from __future__ import annotations


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "****" + value[-4:] if len(value) >= 8 else "*" * len(value)


def mask_name(value: str | None) -> str | None:
    if not value:
        return value
    return value[0] + "*" * (len(value) - 1) if len(value) > 1 else "*"

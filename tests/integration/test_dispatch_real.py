"""The dispatcher through real channels and real servers on loopback: an SMS gateway that checks
Aliyun's signatures, and an SMTP server. The config is a real notifications.yaml with its secrets
in the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import select

from engine.store.models import Delivery, Outbox
from notifications.config import load
from tests.integration.test_dispatch import NOON, run, stage
from tests.sms_gateway import SmsGateway
from tests.smtp_server import SmtpServer


def notifications_file(tmp_path: Path, gateway: SmsGateway, smtp: SmtpServer) -> tuple[Path, dict[str, str]]:
    sms = gateway.channel_config(templates={"sla_breach": {"code": "SMS_0001", "params": ["case", "title"]}})
    env = {"GF_SMS_SECRET": sms.pop("access_key_secret")}
    sms["access_key_secret"] = "${GF_SMS_SECRET}"
    doc = {
        "channels": {"sms": {"kind": "aliyun_sms", **sms}, "email": {"kind": "email", **smtp.channel_config()}},
        "order": ["sms", "email"],
        "retry": {"max_attempts": 3, "base": "30s", "cap": "10m"},
    }
    path = tmp_path / "notifications.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path, env


def test_a_breach_goes_out_by_sms_with_a_verified_signature(db, tmp_path):
    with SmsGateway("aliyun") as gateway, SmtpServer() as smtp:
        path, env = notifications_file(tmp_path, gateway, smtp)
        config = load(path, tmp_path / "notices.log", env)
        assert "gateway-test-secret" not in repr(config.channels["sms"])
        stage(db)
        report = run(db, config, NOON)
        assert (report.sent, report.delivered) == (1, 1)
        [request] = gateway.requests
        assert request.phone.endswith("13800000004")  # 彭莉's phone, from the org chart at send time
        assert request.template == "SMS_0001"
        assert request.template_params["case"] == "SL-2026-000001"
        assert request.idempotency_key == "test:p-peng-li:1"
        assert not smtp.messages
    with db.sessions.begin() as s:
        delivery = s.execute(select(Delivery)).scalar_one()
    assert delivery.channel == "sms" and delivery.ok and delivery.provider_id


def test_a_gateway_down_longer_than_every_retry_falls_back_to_e_mail(db, tmp_path):
    with SmsGateway("aliyun") as gateway, SmtpServer() as smtp:
        path, env = notifications_file(tmp_path, gateway, smtp)
        config = load(path, tmp_path / "notices.log", env)
        gateway.down(100)
        stage(db)
        at = NOON
        for _ in range(6):
            run(db, config, at)
            with db.sessions.begin() as s:
                at = max(at, s.scalar(select(Outbox.next_attempt_at))) + timedelta(seconds=1)
        received = smtp.wait_for(1)
        assert "SL-2026-000001" in received[0].message["Subject"] or "SL-2026-000001" in received[0].part("text/plain")
    with db.sessions.begin() as s:
        outcomes = [(d.channel, d.outcome) for d in s.scalars(select(Delivery).order_by(Delivery.id))]
        notice = s.execute(select(Outbox)).scalar_one()
    assert outcomes == [("sms", "retry"), ("sms", "retry"), ("sms", "exhausted"), ("email", "sent")]
    assert (notice.status, notice.channel, notice.exhausted) == ("sent", "email", ["sms"])


def test_429_waits_as_long_as_the_gateway_asks(db, tmp_path):
    with SmsGateway("aliyun") as gateway, SmtpServer() as smtp:
        path, env = notifications_file(tmp_path, gateway, smtp)
        config = load(path, tmp_path / "notices.log", env)
        gateway.fail(status=429, retry_after="120")
        stage(db)
        run(db, config, NOON)
    with db.sessions.begin() as s:
        assert s.scalar(select(Outbox.next_attempt_at)) == NOON + timedelta(seconds=120)
        assert s.scalar(select(Outbox.status)) == "pending"

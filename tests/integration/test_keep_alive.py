"""A dispatcher tick keeps its connections (:mod:`notifications.channels.keep`): one HTTP connection per
SMS endpoint, one SMTP session per mail server, over real loopback servers.

Reuse must not change what an outcome means: a kept connection the server closed meanwhile is found
out before the message goes, and the message then goes over a new one and is *sent*, not "maybe sent".
"""

from __future__ import annotations

import pytest

from notifications.channels import email as email_channel
from notifications.channels import sms_aliyun, sms_tencent, sms_webhook
from notifications.channels.base import Message, Recipient
from notifications.channels.keep import current, keep_alive
from tests.sms_gateway import PROVIDERS, SmsGateway
from tests.smtp_server import SmtpServer

MODULES = {"aliyun": sms_aliyun, "tencent": sms_tencent, "webhook": sms_webhook}
CODES = {"aliyun": "SMS_123456789", "tencent": "1234567", "webhook": "T-1"}
USER, PASSWORD = "gridflow@shengli.test", "smtp-Pa55word-1234"


def person(n: int) -> Recipient:
    return Recipient(f"p-{n}", f"张{n}", phone=f"1380013{n:04d}", email=f"zhang{n}@mayingtai.test")


def message(n: int) -> Message:
    return Message(
        idempotency_key=f"sla_breach:{n}:p-{n}",
        event="sla_breach",
        recipient=person(n),
        subject="工单超时",
        text=f"GF-{n:04d} 已超时",
        html=f"<p>GF-{n:04d} 已超时</p>",
        params={"case": f"GF-{n:04d}", "title": "路灯不亮", "sms": f"【胜利乡网格中心】GF-{n:04d}已超时，请处置。"},
    )


def sms(gateway: SmsGateway):  # type: ignore[no-untyped-def]
    templates = {"sla_breach": {"code": CODES[gateway.provider], "params": ["case", "title"]}}
    return MODULES[gateway.provider].from_config("sms", gateway.channel_config(templates=templates, timeout_s=2))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tick_sends_over_one_connection_and_each_message_alone_over_its_own(provider: str) -> None:
    with SmsGateway(provider, keep_alive=True) as gateway:
        channel = sms(gateway)
        with keep_alive() as kept:
            results = [channel.send(message(n)) for n in range(5)]
        assert all(r.ok for r in results), results
        assert all(r.verified for r in gateway.requests)
        assert gateway.connections() == 1 and kept.reused == 4
        assert current() is None  # the scope ended with the block
        gateway.requests.clear()
        assert all(channel.send(message(n)).ok for n in range(3))  # no tick: a connection per message
        assert gateway.connections() == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_server_that_says_close_gets_a_new_connection_each_time(provider: str) -> None:
    with SmsGateway(provider) as gateway, keep_alive() as kept:  # every answer says Connection: close
        channel = sms(gateway)
        assert all(channel.send(message(n)).ok for n in range(3))
        assert gateway.connections() == 3 and kept.reused == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_kept_connection_the_server_closed_is_replaced_and_the_message_is_sent(provider: str) -> None:
    with SmsGateway(provider, keep_alive=True) as gateway, keep_alive():
        channel = sms(gateway)
        assert channel.send(message(1)).ok
        gateway.close_idle()  # the server's keep-alive timeout passes while the connection is kept
        result = channel.send(message(2))
        assert result.ok and not result.unknown, result
        assert gateway.connections() == 2 and len(gateway.requests) == 2


def test_a_tick_sends_its_mail_in_one_smtp_session() -> None:
    with SmtpServer(users={USER: PASSWORD}) as server:
        channel = email_channel.from_config("email", server.channel_config(username=USER, password=PASSWORD))
        with keep_alive() as kept:
            results = [channel.send(message(n)) for n in range(5)]
        assert all(r.ok for r in results), results
        assert len(server.messages) == 5 and len({m.peer for m in server.messages}) == 1 and kept.reused == 4
        assert {m.login for m in server.messages} == {USER}
        assert [m.rcpt_tos for m in server.messages] == [[f"zhang{n}@mayingtai.test"] for n in range(5)]


def test_a_kept_smtp_session_the_server_dropped_is_replaced_and_the_mail_is_sent() -> None:
    with SmtpServer(users={USER: PASSWORD}) as server:
        channel = email_channel.from_config("email", server.channel_config(username=USER, password=PASSWORD))
        with keep_alive():
            assert channel.send(message(1)).ok
            server.drop("MAIL", times=1)  # it hangs up when the kept session's next MAIL FROM comes
            result = channel.send(message(2))
            assert result.ok and not result.unknown, result
            server.fail("MAIL", "421 4.3.2 Service shutting down", times=1)  # or says it is closing
            result = channel.send(message(3))
            assert result.ok and not result.unknown, result
        assert len(server.messages) == 3 and len({m.peer for m in server.messages}) == 3


def test_a_mail_refused_does_not_keep_a_session_half_way() -> None:
    with SmtpServer(users={USER: PASSWORD}) as server:
        channel = email_channel.from_config("email", server.channel_config(username=USER, password=PASSWORD))
        with keep_alive() as kept:
            server.reject("zhang1@mayingtai.test")
            assert not channel.send(message(1)).ok
            assert channel.send(message(2)).ok and kept.reused == 0  # a new session after the refusal
            assert channel.send(message(3)).ok and kept.reused == 1
        assert [m.rcpt_tos for m in server.messages] == [["zhang2@mayingtai.test"], ["zhang3@mayingtai.test"]]

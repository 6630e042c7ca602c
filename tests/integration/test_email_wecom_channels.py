"""The email and wecom channels against real servers on 127.0.0.1: an aiosmtpd SMTP server
(tests/smtp_server.py) and a fake WeCom group robot (tests/wecom_robot.py).

The first part is one contract suite run on both channels (config problems all at once, no I/O
while parsing, secrets masked, addressing, a successful send); then what each one adds.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifications.channels import email as email_channel
from notifications.channels import wecom as wecom_channel
from notifications.channels.base import ChannelConfigError, Message, Recipient
from tests.smtp_server import SmtpServer, self_signed_cert
from tests.wecom_robot import WecomRobot

USER, PASSWORD = "gridflow@shengli.test", "smtp-Pa55word-1234"
SUBJECT = "【超时】案件 GF-20240301-0007 已超过办理时限"
TEXT = "张三，您好：\n案件 GF-20240301-0007（马营台村道路积水）已超时 2 小时，请尽快处理。\n——胜利乡网格管理中心"
HTML = "<p>张三，您好：</p><p>案件 <b>GF-20240301-0007</b> 已超时 2 小时，请尽快处理。</p>"
MARKDOWN = '### <font color="warning">案件已超时</font>\n> 案件：GF-20240301-0007\n> 网格：马营台一组\n请尽快处理。'

ZHANG = Recipient(
    "p-zhang",
    "张三",
    phone="13800000001",
    email="zhangsan@mayingtai.test",
    wecom=None,
    places=("mayingtai-01", "mayingtai", "shengli"),
)


def message(
    key: str = "sla_breach:7:p-zhang", recipient: Recipient = ZHANG, *, html: str | None = HTML, **kw: Any
) -> Message:
    fields: dict[str, Any] = {"subject": SUBJECT, "text": TEXT, "markdown": MARKDOWN}
    fields.update(kw)
    return Message(idempotency_key=key, event="sla_breach", recipient=recipient, html=html, **fields)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def robot() -> Iterator[WecomRobot]:
    with WecomRobot() as server:
        yield server


def wecom_config(robot: WecomRobot, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "groups": {"shengli": robot.webhook("shengli"), "mayingtai": robot.webhook("mayingtai")},
        "timeout_s": 5,
    }
    config.update(overrides)
    return config


# -- the contract, on both channels -------------------------------------------------------------------


@dataclass
class Kind:
    """How the contract suite drives one kind of channel."""

    name: str
    module: Any
    server: Callable[[pytest.FixtureRequest], Any]
    good: Callable[[Any], dict[str, Any]]  # a working config for the server
    bad: dict[str, Any]  # a config with several problems
    bad_problems: list[str]  # a fragment of each problem expected
    secrets: Callable[[dict[str, Any]], list[str]]  # the secret values in a config
    reachable: Recipient
    unreachable: Recipient
    received: Callable[[Any], int]  # how many messages the server has taken


KINDS = {
    "email": Kind(
        name="email",
        module=email_channel,
        server=lambda request: request.getfixturevalue("smtp"),
        good=lambda smtp: smtp.channel_config(),
        bad={
            "security": "tls",
            "port": "smtp",
            "username": USER,
            "sender": "not an address",
            "timeout_s": 0,
            "tls_verify": "maybe",
            "colour": "red",
        },
        bad_problems=[
            "unknown key 'colour'",
            "host is required",
            "security must be one of",
            "port must be a whole number",
            "password is required with username",
            "sender 'not an address'",
            "timeout_s must be a positive number",
            "tls_verify must be true or false",
        ],
        secrets=lambda config: [config["password"]],
        reachable=ZHANG,
        unreachable=Recipient("p-li", "李四", phone="13800000002", places=("mayingtai",)),
        received=lambda smtp: len(smtp.messages),
    ),
    "wecom": Kind(
        name="wecom",
        module=wecom_channel,
        server=lambda request: request.getfixturevalue("robot"),
        good=lambda robot: wecom_config(robot),
        bad={
            "groups": {"mayingtai": "http://qyapi.weixin.qq.com/cgi-bin/webhook/send", "shengli": "", 7: "x"},
            "webhook": "qyapi.weixin.qq.com/send?key=abc",
            "mention": "yes",
            "timeout_s": "soon",
            "color": "red",
        },
        bad_problems=[
            "unknown key 'color'",
            "groups.mayingtai: the webhook must be https",
            "groups.mayingtai: the webhook URL has no key=",
            "groups.shengli: the robot's webhook URL is empty",
            "groups: 7 is not a place id",
            "webhook: 'qyapi.weixin.qq.com/send?key=****' is not a webhook URL",
            "mention must be true or false",
            "timeout_s must be a positive number",
        ],
        secrets=lambda config: [url.split("key=")[1] for url in config["groups"].values()],
        reachable=ZHANG,
        unreachable=Recipient("p-wang", "王五", phone="13800000003", places=("dongfeng",)),
        received=lambda robot: len(robot.received),
    ),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[Kind, Any]:
    spec = KINDS[request.param]
    return spec, spec.server(request)


def test_from_config_reports_every_problem_at_once(kind: tuple[Kind, Any]) -> None:
    spec, _ = kind
    with pytest.raises(ChannelConfigError) as caught:
        spec.module.from_config("notify", spec.bad)
    problems = caught.value.problems
    for fragment in spec.bad_problems:
        assert any(fragment in p for p in problems), f"no problem mentions {fragment!r}: {problems}"
    assert len(problems) == len(spec.bad_problems), problems
    assert str(caught.value).startswith("channel 'notify': ")


def test_from_config_does_no_io(kind: tuple[Kind, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    spec, server = kind

    def no_io(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("I/O while parsing the config")

    monkeypatch.setattr(socket.socket, "connect", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    monkeypatch.setattr(ssl, "create_default_context", no_io)
    channel = spec.module.from_config("notify", spec.good(server))
    assert channel.name == "notify"
    assert channel.kind == spec.name
    assert channel.urgent_only is False
    assert spec.module.from_config("x", {**spec.good(server), "urgent_only": True}).urgent_only is True


def test_repr_masks_secrets(kind: tuple[Kind, Any]) -> None:
    spec, server = kind
    config = spec.good(server)
    text = repr(spec.module.from_config("notify", config))
    secrets = spec.secrets(config)
    assert secrets
    for secret in secrets:
        assert secret not in text
        assert secret[:2] + "****" in text
    assert "notify" in text


def test_address_rules(kind: tuple[Kind, Any]) -> None:
    spec, server = kind
    channel = spec.module.from_config("notify", spec.good(server))
    assert channel.address(spec.reachable)
    assert channel.address(spec.unreachable) is None


def test_send_succeeds(kind: tuple[Kind, Any]) -> None:
    spec, server = kind
    channel = spec.module.from_config("notify", spec.good(server))
    result = channel.send(message())
    assert result.ok, result.error
    assert result.provider_id
    assert spec.received(server) == 1


def test_send_without_an_address_fails_for_good_without_io(kind: tuple[Kind, Any]) -> None:
    spec, server = kind
    channel = spec.module.from_config("notify", spec.good(server))
    result = channel.send(message(recipient=spec.unreachable))
    assert not result.ok and result.permanent
    assert spec.received(server) == 0


def test_refused_connection_is_temporary(kind: tuple[Kind, Any]) -> None:
    spec, server = kind
    config = spec.good(server)
    port = closed_port()
    if spec.module is email_channel:
        config["port"] = port
    else:
        config["groups"] = {g: u.replace(f":{server.port}/", f":{port}/") for g, u in config["groups"].items()}
    result = spec.module.from_config("notify", config).send(message())
    assert not result.ok
    assert not result.permanent and not result.unknown, result


# -- email: config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)])
def test_email_default_port_follows_security(security: str, port: int) -> None:
    channel = email_channel.from_config(
        "email", {"host": "smtp.example.org", "security": security, "sender": "a@b.org"}
    )
    assert channel.port == port
    assert email_channel.from_config("email", {"host": "h", "sender": "a@b.org"}).security == "starttls"


def test_email_config_takes_strings_from_the_environment() -> None:
    channel = email_channel.from_config(
        "email", {"host": "h", "port": "2525", "sender": "a@b.org", "tls_verify": "false", "timeout_s": "2.5"}
    )
    assert (channel.port, channel.tls_verify, channel.timeout_s) == (2525, False, 2.5)


def test_email_config_refuses_a_clear_text_password_to_a_remote_host() -> None:
    config = {"host": "smtp.example.org", "security": "none", "sender": "a@b.org", "username": "u", "password": "p"}
    with pytest.raises(ChannelConfigError, match="unencrypted"):
        email_channel.from_config("email", config)
    assert email_channel.from_config("email", {**config, "host": "127.0.0.1"}).username == "u"


def test_email_config_password_without_username_and_a_non_ascii_password() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        email_channel.from_config("email", {"host": "h", "sender": "a@b.org", "password": "密码"})
    assert caught.value.problems == [
        "password must be ASCII (SMTP logins are sent as ASCII)",
        "username is required with password",
    ]


def test_email_sender_with_a_chinese_display_name() -> None:
    channel = email_channel.from_config(
        "email", {"host": "h", "sender": "胜利乡网格管理中心 <gridflow@shengli.example.org>"}
    )
    assert channel.sender.display_name == "胜利乡网格管理中心"
    assert channel.sender.addr_spec == "gridflow@shengli.example.org"
    with pytest.raises(ChannelConfigError, match="not one e-mail address"):
        email_channel.from_config("email", {"host": "h", "sender": "a@b.org, c@d.org"})


def test_email_address_rules() -> None:
    channel = email_channel.from_config("email", {"host": "h", "sender": "a@b.org"})
    assert channel.address(ZHANG) == "zhangsan@mayingtai.test"
    assert channel.address(Recipient("x", "x", email=" x@y.test ")) == "x@y.test"
    for bad in (None, "", "no-at-sign", "a b@c.test", "@c.test", "a@"):
        assert channel.address(Recipient("x", "x", email=bad)) is None


# -- email: the message --------------------------------------------------------------------------------


def test_email_headers_and_bodies(smtp: SmtpServer) -> None:
    channel = email_channel.from_config("email", smtp.channel_config())
    result = channel.send(message())
    assert result.ok, result.error
    (got,) = smtp.wait_for(1)
    mail = got.message
    assert mail["Subject"] == SUBJECT
    assert mail["From"].addresses[0].display_name == "胜利乡网格管理中心"
    assert mail["From"].addresses[0].addr_spec == "gridflow@shengli.test"
    assert mail["To"].addresses[0].display_name == "张三"
    assert mail["To"].addresses[0].addr_spec == "zhangsan@mayingtai.test"
    assert mail["X-Gridflow-Key"] == "sla_breach:7:p-zhang"
    assert mail["Date"] and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] == result.provider_id == channel.message_id("sla_breach:7:p-zhang")
    assert mail.get_content_type() == "multipart/alternative"
    assert got.part("text/plain") == TEXT + "\n"
    assert got.part("text/html") == HTML + "\n"
    assert got.mail_from == "gridflow@shengli.test" and got.rcpt_tos == ["zhangsan@mayingtai.test"]
    assert got.data.isascii()  # headers RFC 2047-encoded, bodies base64: no 8BITMIME needed
    assert b"=?utf-8?" in got.data.split(b"\r\n\r\n")[0]


def test_email_message_id_is_stable_for_a_key(smtp: SmtpServer) -> None:
    channel = email_channel.from_config("email", smtp.channel_config())
    for key in ("k-1", "k-1", "k-2"):
        assert channel.send(message(key)).ok
    first, again, other = (m.message["Message-ID"] for m in smtp.wait_for(3))
    assert first == again != other
    assert first.endswith("@shengli.test>")


def test_email_text_only_when_there_is_no_html(smtp: SmtpServer) -> None:
    channel = email_channel.from_config("email", smtp.channel_config())
    assert channel.send(message(html=None)).ok
    (got,) = smtp.wait_for(1)
    assert got.message.get_content_type() == "text/plain"
    assert got.part("text/plain") == TEXT + "\n"
    assert got.part("text/html") is None


def test_email_header_injection_is_flattened(smtp: SmtpServer) -> None:
    channel = email_channel.from_config("email", smtp.channel_config())
    sneaky = Recipient("x", "张三\r\nBcc: victim@evil.test", email="x@y.test")
    assert channel.send(message(recipient=sneaky, subject="超时\r\nBcc: victim@evil.test")).ok
    (got,) = smtp.wait_for(1)
    assert got.message["Bcc"] is None
    assert got.rcpt_tos == ["x@y.test"]


def test_email_to_an_internationalised_address_uses_smtputf8(smtp: SmtpServer) -> None:
    channel = email_channel.from_config("email", smtp.channel_config())
    person = Recipient("p-zhao", "赵六", email="赵六@例子.中国")
    result = channel.send(message(recipient=person))
    assert result.ok, result.error
    (got,) = smtp.wait_for(1)
    assert got.rcpt_tos == ["赵六@xn--fsqu00a.xn--fiqs8s"]
    assert "SMTPUTF8" in got.mail_options
    assert got.message["To"].addresses[0].username == "赵六"


# -- email: login and TLS ------------------------------------------------------------------------------


def test_email_logs_in(smtp: SmtpServer) -> None:
    assert email_channel.from_config("email", smtp.channel_config()).send(message()).ok
    assert smtp.logins == [(USER, True)]
    assert smtp.wait_for(1)[0].login == USER


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_email_logs_in_with_either_mechanism(mechanism: str) -> None:
    with SmtpServer(users={USER: PASSWORD}, auth_mechanisms=(mechanism,)) as smtp:
        assert email_channel.from_config("email", smtp.channel_config()).send(message()).ok
        assert smtp.wait_for(1)[0].login == USER


def test_email_without_login_where_the_server_requires_one_fails_for_good(smtp: SmtpServer) -> None:
    result = email_channel.from_config("email", smtp.channel_config(username=None, password=None)).send(message())
    assert not result.ok and result.permanent
    assert "530" in (result.error or "")


def test_email_wrong_password_fails_for_good_and_says_so(smtp: SmtpServer) -> None:
    result = email_channel.from_config("email", smtp.channel_config(password="wrong-password")).send(message())
    assert not result.ok and result.permanent and result.config and not result.unknown
    assert "refused the login" in (result.error or "") and "check username and password" in (result.error or "")
    assert "wrong-password" not in (result.error or "")
    assert smtp.messages == []


def test_email_starttls_is_used_when_configured(cert: tuple[Path, Path]) -> None:
    with SmtpServer(users={USER: PASSWORD}, tls="starttls", cert=cert) as smtp:
        result = email_channel.from_config("email", smtp.channel_config()).send(message())
        assert result.ok, result.error
        (got,) = smtp.wait_for(1)
        assert got.tls and got.login == USER  # AUTH is offered only after STARTTLS on this server


def test_email_implicit_tls(cert: tuple[Path, Path]) -> None:
    with SmtpServer(users={USER: PASSWORD}, tls="ssl", cert=cert) as smtp:
        result = email_channel.from_config("email", smtp.channel_config()).send(message())
        assert result.ok, result.error
        assert smtp.wait_for(1)[0].tls


def test_email_unverified_certificate_fails_for_good(cert: tuple[Path, Path]) -> None:
    with SmtpServer(users={USER: PASSWORD}, tls="starttls", cert=cert) as smtp:
        result = email_channel.from_config("email", smtp.channel_config(tls_verify=True)).send(message())
        assert not result.ok and result.permanent
        assert "certificate" in (result.error or "") and "tls_verify" in (result.error or "")
        assert smtp.messages == []


def test_email_starttls_configured_but_not_offered_fails_for_good(smtp: SmtpServer) -> None:
    result = email_channel.from_config("email", smtp.channel_config(security="starttls")).send(message())
    assert not result.ok and result.permanent
    assert "does not offer STARTTLS" in (result.error or "")
    assert smtp.messages == []


def test_email_ssl_against_a_plain_server_fails_for_good(smtp: SmtpServer) -> None:
    result = email_channel.from_config("email", smtp.channel_config(security="ssl")).send(message())
    assert not result.ok and result.permanent, result
    assert "security: ssl" in (result.error or "")


# -- email: failures -----------------------------------------------------------------------------------


def test_email_550_for_the_recipient_is_permanent(smtp: SmtpServer) -> None:
    smtp.reject("zhangsan@mayingtai.test")
    channel = email_channel.from_config("email", smtp.channel_config())
    result = channel.send(message())
    assert not result.ok and result.permanent and not result.unknown
    assert "550" in (result.error or "") and "zhangsan@mayingtai.test" in (result.error or "")
    other = Recipient("p-li", "李四", email="lisi@mayingtai.test")
    assert channel.send(message(recipient=other)).ok  # the rejection was for that recipient only


def test_email_550_for_the_sender_is_permanent(smtp: SmtpServer) -> None:
    smtp.fail("MAIL", "550 5.7.1 Sender rejected")
    result = email_channel.from_config("email", smtp.channel_config()).send(message())
    assert not result.ok and result.permanent


@pytest.mark.parametrize("stage", ["RCPT", "DATA"])
def test_email_451_is_temporary_and_the_retry_goes_through(smtp: SmtpServer, stage: str) -> None:
    smtp.fail(stage, "451 4.7.1 Greylisted, try again later", times=1)
    channel = email_channel.from_config("email", smtp.channel_config())
    result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert "451" in (result.error or "")
    assert smtp.messages == []
    assert channel.send(message()).ok
    assert len(smtp.wait_for(1)) == 1


@pytest.mark.parametrize("stage", ["MAIL", "RCPT"])
def test_email_dropped_connection_before_data_is_temporary(smtp: SmtpServer, stage: str) -> None:
    smtp.drop(stage)
    result = email_channel.from_config("email", smtp.channel_config()).send(message())
    assert not result.ok and not result.permanent and not result.unknown, result
    assert "closed the connection" in (result.error or "")


def test_email_timeout_before_data_is_temporary(smtp: SmtpServer) -> None:
    smtp.delay("MAIL", 3)
    result = email_channel.from_config("email", smtp.channel_config(timeout_s=0.5)).send(message())
    assert not result.ok and not result.permanent and not result.unknown, result
    assert "timed out at MAIL FROM" in (result.error or "")


def test_email_timeout_after_data_is_unknown_and_the_retry_is_recognisable(smtp: SmtpServer) -> None:
    smtp.delay("DATA", 3, times=1)
    channel = email_channel.from_config("email", smtp.channel_config(timeout_s=0.5))
    result = channel.send(message())
    assert not result.ok and result.unknown and not result.permanent, result
    assert "timed out at DATA" in (result.error or "")
    assert channel.send(message()).ok  # the dispatcher's retry, same key
    first, retry = smtp.wait_for(2)  # the server did take the first one: the reply was lost
    assert first.message["Message-ID"] == retry.message["Message-ID"]


def test_email_dropped_connection_after_data_is_unknown(smtp: SmtpServer) -> None:
    smtp.drop("DATA")
    result = email_channel.from_config("email", smtp.channel_config()).send(message())
    assert not result.ok and result.unknown, result


def test_email_unresolvable_host_is_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no real DNS in tests
    channel = email_channel.from_config("email", {"host": "smtp.example.org", "sender": "a@b.org", "helo": "t.test"})
    result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert "could not be resolved" in (result.error or "")


def test_email_and_wecom_load_from_the_notifications_file(tmp_path: Path, smtp: SmtpServer, robot: WecomRobot) -> None:
    from notifications.config import load

    path = tmp_path / "notifications.yaml"
    path.write_text(
        f"""
channels:
  email:
    kind: email
    host: 127.0.0.1
    port: ${{SMTP_PORT}}
    security: none
    username: {USER}
    password: ${{SMTP_PASSWORD}}
    sender: 胜利乡网格管理中心 <gridflow@shengli.test>
    helo: gridflow.test
  wecom:
    kind: wecom
    groups:
      shengli: ${{WECOM_TOWNSHIP}}
      mayingtai: ${{WECOM_MAYINGTAI}}
order: [wecom, email]
""",
        encoding="utf-8",
    )
    env = {
        "SMTP_PORT": str(smtp.port),
        "SMTP_PASSWORD": PASSWORD,
        "WECOM_TOWNSHIP": robot.webhook("shengli"),
        "WECOM_MAYINGTAI": robot.webhook("mayingtai"),
    }
    config = load(path, tmp_path / "notices.log", env)
    assert config.channels["email"].send(message()).ok
    assert config.channels["wecom"].send(message()).ok
    assert smtp.wait_for(1)[0].login == USER
    assert robot.wait_for(1)[0].group == "mayingtai"


# -- wecom: config and addressing ----------------------------------------------------------------------


def test_wecom_needs_groups_or_a_webhook() -> None:
    with pytest.raises(ChannelConfigError, match="groups .* or webhook .* is required"):
        wecom_channel.from_config("wecom", {})
    with pytest.raises(ChannelConfigError, match="could reach nobody"):
        wecom_channel.from_config("wecom", {"groups": {}})


def test_wecom_plain_http_only_to_loopback() -> None:
    for host in ("127.0.0.1:8080", "localhost", "[::1]:9"):
        wecom_channel.from_config("w", {"webhook": f"http://{host}/cgi-bin/webhook/send?key=k"})
    with pytest.raises(ChannelConfigError) as caught:
        wecom_channel.from_config("w", {"webhook": "http://10.0.0.1/cgi-bin/webhook/send?key=k"})
    problems = caught.value.problems
    assert problems == ["webhook: the webhook must be https (plain http only to a loopback test server)"]


def test_wecom_address_prefers_the_most_specific_group(robot: WecomRobot) -> None:
    channel = wecom_channel.from_config("wecom", wecom_config(robot))
    assert channel.address(ZHANG) == "group:mayingtai"  # no grid group: the village's, not the township's
    township_only = Recipient("p-sun", "孙七", places=("dongfeng-02", "dongfeng", "shengli"))
    assert channel.address(township_only) == "group:shengli"
    assert channel.address(Recipient("p-x", "无名", places=())) is None
    with_grid = wecom_channel.from_config(
        "wecom",
        wecom_config(robot, groups={**wecom_config(robot)["groups"], "mayingtai-01": robot.webhook("mayingtai-01")}),
    )
    assert with_grid.address(ZHANG) == "group:mayingtai-01"
    single = wecom_channel.from_config("wecom", {"webhook": robot.webhook("shengli")})
    assert single.address(Recipient("p-x", "无名", places=())) == "webhook"
    both = wecom_channel.from_config("wecom", wecom_config(robot, webhook=robot.webhook("shengli")))
    assert both.address(Recipient("p-x", "无名", places=("elsewhere",))) == "webhook"
    assert both.address(ZHANG) == "group:mayingtai"


def test_wecom_repr_and_errors_never_show_a_key(robot: WecomRobot) -> None:
    robot.errcode(93000)
    config = wecom_config(robot, webhook=robot.webhook("shengli"))
    channel = wecom_channel.from_config("wecom", config)
    result = channel.send(message())
    for key in robot.keys.values():
        assert key not in repr(channel)
        assert key not in (result.error or "")


@pytest.mark.parametrize(
    "errmsg",
    [
        "invalid parameter, url: {url}",
        "robot {key} is over its quota",
        "x" * 190 + " robot {key}",  # the key straddles the cut to 200 characters: masked before the cut
    ],
)
def test_wecom_a_reply_that_echoes_the_key_is_masked(robot: WecomRobot, errmsg: str) -> None:
    robot.errcode(40058, errmsg=errmsg)
    channel = wecom_channel.from_config("wecom", wecom_config(robot))
    result = channel.send(message())
    error = result.error or ""
    assert not result.ok and result.permanent and "40058" in error
    key = robot.keys["mayingtai"]
    assert key not in error and key[:8] not in error and key[-8:] not in error, error


# -- wecom: sending ------------------------------------------------------------------------------------


def test_wecom_markdown_arrives_in_the_village_group(robot: WecomRobot) -> None:
    result = wecom_channel.from_config("wecom", wecom_config(robot)).send(message())
    assert result.ok, result.error
    assert result.provider_id == "sla_breach:7:p-zhang"
    (post,) = robot.wait_for(1)
    assert post.group == "mayingtai"
    assert post.body == {"msgtype": "markdown", "markdown": {"content": MARKDOWN}}
    assert post.headers["Content-Type"].startswith("application/json")
    assert "案件已超时".encode() in post.raw  # UTF-8 JSON, not \\u escapes
    assert robot.posts("shengli") == []


def test_wecom_falls_back_to_the_text(robot: WecomRobot) -> None:
    assert wecom_channel.from_config("wecom", wecom_config(robot)).send(message(markdown=None)).ok
    assert robot.wait_for(1)[0].content == TEXT


def test_wecom_mention_by_user_id_is_inline(robot: WecomRobot) -> None:
    person = Recipient("p-zhang", "张三", phone="13800000001", wecom="ZhangSan", places=("mayingtai",))
    assert wecom_channel.from_config("wecom", wecom_config(robot, mention=True)).send(message(recipient=person)).ok
    (post,) = robot.wait_for(1)
    assert post.content == MARKDOWN + "\n<@ZhangSan>"


def test_wecom_mention_by_mobile_is_a_second_text_message(robot: WecomRobot) -> None:
    assert wecom_channel.from_config("wecom", wecom_config(robot, mention=True)).send(message()).ok
    markdown, mention = robot.wait_for(2)
    assert markdown.body["msgtype"] == "markdown" and "<@" not in markdown.content
    assert mention.body["msgtype"] == "text"
    assert mention.body["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert "张三" in mention.content and SUBJECT in mention.content
    assert {markdown.group, mention.group} == {"mayingtai"}


def test_wecom_45009_retries_after_a_minute(robot: WecomRobot) -> None:
    robot.errcode(45009)
    result = wecom_channel.from_config("wecom", wecom_config(robot)).send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert result.retry_after == 60
    assert "45009" in (result.error or "")


def test_wecom_invalid_key_is_permanent(robot: WecomRobot) -> None:
    config = wecom_config(robot, groups={"mayingtai": robot.webhook("mayingtai", key="no-such-robot")})
    result = wecom_channel.from_config("wecom", config).send(message())
    assert not result.ok and result.permanent and result.config
    assert "93000" in (result.error or "") and "group:mayingtai" in (result.error or "")


def test_wecom_500_is_temporary(robot: WecomRobot) -> None:
    robot.http_status(500, times=1)
    channel = wecom_channel.from_config("wecom", wecom_config(robot))
    result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert "HTTP 500" in (result.error or "")
    assert channel.send(message()).ok


def test_wecom_404_is_permanent(robot: WecomRobot) -> None:
    url = robot.webhook("mayingtai").replace("/cgi-bin/webhook/send", "/wrong/path")
    result = wecom_channel.from_config("wecom", {"webhook": url}).send(message())
    assert not result.ok and result.permanent


def test_wecom_timeout_is_unknown(robot: WecomRobot) -> None:
    robot.delay(3)
    result = wecom_channel.from_config("wecom", wecom_config(robot, timeout_s=0.5)).send(message())
    assert not result.ok and result.unknown and not result.permanent, result
    assert "timed out" in (result.error or "")


def test_wecom_dropped_reply_is_unknown(robot: WecomRobot) -> None:
    robot.drop()
    result = wecom_channel.from_config("wecom", wecom_config(robot)).send(message())
    assert not result.ok and result.unknown, result
    assert len(robot.posts()) == 1


def test_wecom_refused_is_temporary_and_then_it_goes_through(robot: WecomRobot) -> None:
    channel = wecom_channel.from_config("wecom", wecom_config(robot))
    with robot.refuse():
        result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown, result
    assert channel.send(message()).ok


def test_wecom_long_content_is_cut_to_4096_bytes(robot: WecomRobot) -> None:
    lines = [f"> {i:03d}. 案件 GF-20240301-{i:04d} 马营台村道路积水，已超时" for i in range(300)]
    result = wecom_channel.from_config("wecom", wecom_config(robot)).send(message(markdown="\n".join(lines)))
    assert result.ok, result.error
    content = robot.wait_for(1)[0].content
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith("（内容过长，已截断）")
    kept = content.split("\n\n……")[0].split("\n")
    assert kept == lines[: len(kept)]  # whole lines, in order
    assert len(kept) > 50


def test_fit_never_cuts_inside_a_character_or_markup() -> None:
    fit = wecom_channel.fit
    assert fit("短", 4096) == "短"
    for text in (
        "中" * 3000,
        "a" * 4000 + '<font color="warning">超时超时超时</font>' * 20,
        "x" * 4050 + "[案件详情](https://example.org/cases/1234567890)" * 5,
        "**" + "加粗" * 2000 + "**",
    ):
        cut = fit(text, 4096)
        assert len(cut.encode("utf-8")) <= 4096
        body = cut.removesuffix(wecom_channel.TRUNCATED)
        assert body.count("<font") == body.count("</font>")
        assert body.count("**") % 2 == 0
        assert body.count("[") == body.count("](") == body.count(")")
        assert not body.rstrip(">").endswith("<")


def test_wecom_reply_that_is_not_json_is_temporary() -> None:
    result = wecom_channel._reply("group:x", b"<html>portal</html>")
    assert result is not None and not result.ok and not result.permanent
    assert wecom_channel._reply("group:x", json.dumps({"errcode": 0}).encode()) is None

"""The SMS channels keep the channel contract (notifications/channels/base.py), against a fake
provider over real HTTP on 127.0.0.1 (tests/sms_gateway.py) that checks every request's signature
on its own. One suite, run for Aliyun, Tencent Cloud and the generic webhook gateway."""

from __future__ import annotations

import socket
import ssl
import time
from types import ModuleType

import pytest

from notifications.channels import sms_aliyun, sms_tencent, sms_webhook
from notifications.channels.base import ChannelConfigError, Message, Recipient
from tests.sms_gateway import SmsGateway

PROVIDERS = ["aliyun", "tencent", "webhook"]
MODULES: dict[str, ModuleType] = {"aliyun": sms_aliyun, "tencent": sms_tencent, "webhook": sms_webhook}
CODES = {"aliyun": "SMS_000001", "tencent": "1234567", "webhook": "SLA_BREACH"}
# each provider's "this is not a valid mobile number"
ILLEGAL_NUMBER = {
    "aliyun": "isv.MOBILE_NUMBER_ILLEGAL",
    "tencent": "InvalidParameterValue.IncorrectPhoneNumber",
    "webhook": "invalid_number",
}
# where each provider wants the number, and in which form
SENT_PHONE = {"aliyun": "13800138000", "tencent": "+8613800138000", "webhook": "13800138000"}
SECRET_KEYS = {
    "aliyun": ("access_key_id", "access_key_secret"),
    "tencent": ("secret_id", "secret_key"),
    "webhook": ("secret", "token"),
}
REQUIRED = {
    "aliyun": ["access_key_id", "access_key_secret", "sign_name", "templates"],
    "tencent": ["secret_id", "secret_key", "sdk_app_id", "sign_name", "templates"],
    "webhook": ["url"],
}
URL_KEY = {"aliyun": "endpoint", "tencent": "endpoint", "webhook": "url"}
TIMEOUT = 0.5

ZHANG = Recipient("p-zhang-san", "张三", phone="138 0013 8000")
NO_PHONE = Recipient("p-li-si", "李四", email="lisi@example.org")


def templates(provider: str) -> dict:
    return {"sla_breach": {"code": CODES[provider], "params": ["case", "title"]}}


def message(
    sms: str = "【胜利乡网格中心】张三：GF-0001「路灯不亮」已超过办理时限，请立即处置。",
    event: str = "sla_breach",
    recipient: Recipient = ZHANG,
    key: str = "sla_breach:GF-0001:p-zhang-san",
    **params: str,
) -> Message:
    return Message(
        idempotency_key=key,
        event=event,
        recipient=recipient,
        subject="工单超时",
        text="GF-0001 已超时",
        params={"case": "GF-0001", "title": "路灯不亮", "sms": sms, **params},
    )


@pytest.fixture(params=PROVIDERS)
def gateway(request):
    with SmsGateway(request.param) as gw:
        yield gw


@pytest.fixture
def channel(gateway):
    config = gateway.channel_config(templates=templates(gateway.provider), timeout_s=TIMEOUT)
    return MODULES[gateway.provider].from_config("sms", config)


# -- from_config -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_from_config_reports_every_problem_at_once(provider):
    config = {URL_KEY[provider]: "ftp://sms.example.org/send", "timeout_s": "soon", "urgent_only": "maybe", "colour": 1}
    with pytest.raises(ChannelConfigError) as caught:
        MODULES[provider].from_config("sms", config)
    problems = caught.value.problems
    text = str(caught.value)
    assert text.startswith("channel 'sms': ")
    for key in REQUIRED[provider]:
        if key != "url":
            assert any(p.startswith(f"{key} is required") for p in problems), (key, problems)
    assert any("must use https://" in p and "'ftp'" in p for p in problems), problems
    assert any(p.startswith("timeout_s must be a number") for p in problems), problems
    assert any(p.startswith("urgent_only must be true or false") for p in problems), problems
    assert any("unknown key 'colour'" in p for p in problems), problems


@pytest.mark.parametrize("provider", PROVIDERS)
def test_from_config_missing_everything(provider):
    with pytest.raises(ChannelConfigError) as caught:
        MODULES[provider].from_config("sms", {})
    for key in REQUIRED[provider]:
        assert any(p.startswith(f"{key} is required") for p in caught.value.problems), (key, caught.value.problems)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain_http_only_to_a_local_address(provider):
    with SmsGateway(provider) as gw:
        good = gw.channel_config(templates=templates(provider))
        MODULES[provider].from_config("sms", good)  # http://127.0.0.1 is fine
        with pytest.raises(ChannelConfigError) as caught:
            MODULES[provider].from_config("sms", {**good, URL_KEY[provider]: "http://sms.example.org/"})
    assert any("plain http:// is only allowed" in p for p in caught.value.problems)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_from_config_checks_templates(provider):
    with SmsGateway(provider) as gw:
        config = gw.channel_config(
            templates={"sla_breach": {"params": ["case"]}, "digest": {"code": "X", "params": "count"}, "bad": "X"}
        )
    with pytest.raises(ChannelConfigError) as caught:
        MODULES[provider].from_config("sms", config)
    problems = caught.value.problems
    assert "templates.sla_breach.code is required (the provider's template code)" in problems
    assert "templates.digest.params must be a list of parameter names" in problems
    assert any(p.startswith("templates.bad must be") for p in problems)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_from_config_does_no_io(provider, monkeypatch):
    def no_io(*args, **kwargs):
        raise AssertionError("I/O while parsing config")

    with SmsGateway(provider) as gw:
        config = gw.channel_config(templates=templates(provider))
    monkeypatch.setattr(socket, "socket", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    monkeypatch.setattr(socket, "getaddrinfo", no_io)
    monkeypatch.setattr(ssl, "create_default_context", no_io)
    channel = MODULES[provider].from_config("sms", {**config, URL_KEY[provider]: "https://sms.example.org/"})
    assert channel.name == "sms" and channel.kind == f"{provider}_sms" and channel.urgent_only is False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_urgent_only_and_defaults(provider):
    with SmsGateway(provider) as gw:
        config = gw.channel_config(templates=templates(provider), urgent_only=True)
    channel = MODULES[provider].from_config("sms", config)
    assert channel.urgent_only is True
    assert channel.timeout_s == 10.0


# -- repr and address ----------------------------------------------------------------------------------


def test_repr_masks_secrets(gateway, channel):
    text = repr(channel)
    assert channel.name in text
    for key in SECRET_KEYS[gateway.provider]:
        value = gateway.channel_config()[key]
        assert value not in text, key
    assert gateway.secret not in text and "****" in text


def test_address_is_the_phone(channel):
    assert channel.address(ZHANG) == "13800138000"
    assert channel.address(Recipient("p-x", "X", phone="+86 13800138000")) == "+8613800138000"
    assert channel.address(NO_PHONE) is None
    assert channel.address(Recipient("p-y", "Y", phone="  ")) is None
    assert channel.address(Recipient("p-z", "Z", phone="无")) is None


# -- send ------------------------------------------------------------------------------------------------


def test_send_delivers_with_a_verified_signature(gateway, channel):
    result = channel.send(message())
    assert result.ok, result.error
    assert result.provider_id and result.error is None
    assert result.parts == 1
    [request] = gateway.requests
    assert request.verified, request.problem
    assert request.phone == SENT_PHONE[gateway.provider]
    assert request.template == CODES[gateway.provider]
    expected = ["GF-0001", "路灯不亮"] if gateway.provider == "tencent" else {"case": "GF-0001", "title": "路灯不亮"}
    assert request.template_params == expected


def test_provider_id_is_the_providers(gateway, channel):
    result = channel.send(message())
    prefix = {"aliyun": "1^0", "tencent": "2433:1", "webhook": "wh-1"}[gateway.provider]
    assert result.provider_id == prefix


def test_a_71_character_text_is_two_parts(gateway, channel):
    text = "通" * 71
    result = channel.send(message(sms=text))
    assert result.ok and result.parts == 2
    assert channel.send(message(sms="通" * 70)).parts == 1
    if gateway.provider == "webhook":
        assert gateway.requests[0].fields["text"] == text


def test_the_idempotency_key_is_carried(gateway, channel):
    msg = message(key="digest:p-zhang-san:17:3")
    assert channel.send(msg).ok
    request = gateway.requests[-1]
    assert request.idempotency_key == "digest:p-zhang-san:17:3"
    if gateway.provider == "webhook":
        assert request.headers["idempotency-key"] == "digest:p-zhang-san:17:3"


def test_http_500_is_temporary(gateway, channel):
    gateway.fail(status=500)
    result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert "500" in (result.error or "")
    assert channel.send(message()).ok  # and the next attempt goes through


def test_http_429_retries_after_the_servers_delay(gateway, channel):
    gateway.fail(status=429, retry_after="7")
    result = channel.send(message())
    assert not result.ok and not result.permanent and not result.unknown
    assert result.retry_after == 7.0


def test_503_with_an_http_date_retry_after(gateway, channel):
    gateway.fail(status=503, retry_after="Fri, 01 Jan 2100 00:00:00 GMT")
    result = channel.send(message())
    assert not result.ok and not result.permanent and result.retry_after == 24 * 3600.0


def test_an_illegal_number_is_permanent(gateway, channel):
    gateway.fail(code=ILLEGAL_NUMBER[gateway.provider])
    result = channel.send(message())
    assert not result.ok and result.permanent and not result.unknown
    assert ILLEGAL_NUMBER[gateway.provider] in (result.error or "")


def test_a_timeout_leaves_the_outcome_unknown_and_the_retry_reuses_the_key(gateway, channel):
    gateway.fail(delay=TIMEOUT * 6)
    started = time.monotonic()
    result = channel.send(message())
    assert time.monotonic() - started < TIMEOUT * 4
    assert not result.ok and result.unknown and not result.permanent
    retry = channel.send(message())
    assert retry.ok, retry.error
    first, second = gateway.requests
    assert first.verified and second.verified  # a fresh signature (and, for Aliyun, a fresh nonce)
    assert first.idempotency_key == second.idempotency_key == "sla_breach:GF-0001:p-zhang-san"


def test_a_hang_up_after_the_request_is_unknown(gateway, channel):
    gateway.fail(hangup=True)
    result = channel.send(message())
    assert not result.ok and result.unknown and not result.permanent
    assert len(gateway.requests) == 1


def test_a_refused_connection_is_temporary_not_unknown(gateway, channel):
    gateway.stop()
    result = channel.send(message())
    assert not result.ok and not result.unknown and not result.permanent
    assert "refused" in (result.error or "")
    gateway.start()
    assert channel.send(message()).ok


def test_down_for_some_requests(gateway, channel):
    gateway.down(2)
    outcomes = [channel.send(message()) for _ in range(3)]
    assert [r.ok for r in outcomes] == [False, False, True]
    assert all(not r.permanent and not r.unknown for r in outcomes[:2])


def test_an_event_without_a_template_is_permanent(gateway, channel):
    result = channel.send(message(event="case_resolved"))
    assert not result.ok and result.permanent
    assert result.error == "no SMS template for event case_resolved"
    assert gateway.requests == []  # nothing went out


def test_a_missing_template_parameter_is_permanent(gateway, channel):
    msg = Message("k-1", "sla_breach", ZHANG, "s", "t", params={"case": "GF-0001", "sms": "x"})
    result = channel.send(msg)
    assert not result.ok and result.permanent and "title" in (result.error or "")
    assert gateway.requests == []


def test_a_person_without_a_phone_is_permanent(gateway, channel):
    result = channel.send(message(recipient=NO_PHONE))
    assert not result.ok and result.permanent
    assert gateway.requests == []


def test_a_wrong_secret_is_rejected_by_the_gateway_and_permanent(gateway):
    config = gateway.channel_config(templates=templates(gateway.provider), timeout_s=TIMEOUT)
    config[SECRET_KEYS[gateway.provider][0 if gateway.provider == "webhook" else 1]] = "not-the-secret-at-all"
    channel = MODULES[gateway.provider].from_config("sms", config)
    result = channel.send(message())
    assert not result.ok and result.permanent and result.config, result  # the channel's config is wrong
    [request] = gateway.requests
    assert not request.verified


# -- provider specifics ---------------------------------------------------------------------------------


def test_numbers_outside_the_mainland():
    hong_kong = Recipient("p-hk", "陈", phone="+852 9123 4567")
    for provider, sent in (("aliyun", "0085291234567"), ("tencent", "+85291234567"), ("webhook", "+85291234567")):
        with SmsGateway(provider) as gw:
            channel = MODULES[provider].from_config("sms", gw.channel_config(templates=templates(provider)))
            assert channel.send(message(recipient=hong_kong)).ok
            assert gw.requests[0].phone == sent, provider


def test_aliyun_flow_control_waits_a_minute():
    with SmsGateway("aliyun") as gw:
        channel = sms_aliyun.from_config("sms", gw.channel_config(templates=templates("aliyun")))
        gw.fail(code="isv.BUSINESS_LIMIT_CONTROL")
        result = channel.send(message())
        assert not result.ok and not result.permanent and result.retry_after == 60.0
        gw.fail(code="Throttling.User", status=400)
        result = channel.send(message())
        assert not result.ok and not result.permanent and result.retry_after == 10.0
        gw.fail(code="isp.SYSTEM_ERROR")
        assert not channel.send(message()).permanent
        for code in ("isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.INVALID_PARAMETERS"):
            gw.fail(code=code)
            assert channel.send(message()).permanent, code


def test_aliyun_a_reused_nonce_or_a_stale_clock_is_temporary():
    with SmsGateway("aliyun") as gw:
        channel = sms_aliyun.from_config("sms", gw.channel_config(templates=templates("aliyun")))
        channel._nonce = lambda: "always-the-same"
        assert channel.send(message()).ok
        result = channel.send(message())
        assert not result.ok and not result.permanent and "SignatureNonceUsed" in (result.error or "")
        channel._nonce = lambda: str(time.monotonic_ns())
        channel._clock = lambda: time.time() - 3600
        result = channel.send(message())
        assert not result.ok and not result.permanent and "InvalidTimeStamp.Expired" in (result.error or "")


def test_aliyun_sends_the_template_parameters_as_json():
    with SmsGateway("aliyun") as gw:
        channel = sms_aliyun.from_config("sms", gw.channel_config(templates=templates("aliyun")))
        assert channel.send(message(title="井盖 & 路灯")).ok
        fields = gw.requests[0].fields
        assert fields["TemplateParam"] == '{"case":"GF-0001","title":"井盖 & 路灯"}'
        assert fields["SignName"] == "胜利乡网格中心" and fields["RegionId"] == "cn-hangzhou"
        assert fields["Format"] == "JSON"


def test_aliyun_answer_without_a_code_is_temporary():
    with SmsGateway("aliyun") as gw:
        channel = sms_aliyun.from_config("sms", gw.channel_config(templates=templates("aliyun")))
        gw.fail(status=200, body=b"<html>portal</html>")
        result = channel.send(message())
        assert not result.ok and not result.permanent and not result.unknown


def test_tencent_limits_and_request_level_errors():
    with SmsGateway("tencent") as gw:
        channel = sms_tencent.from_config("sms", gw.channel_config(templates=templates("tencent")))
        gw.fail(code="LimitExceeded.PhoneNumberThirtySecondLimit")
        result = channel.send(message())
        assert not result.ok and not result.permanent and result.retry_after == 30.0
        gw.fail(code="RequestLimitExceeded")
        assert channel.send(message()).retry_after == 10.0
        gw.fail(code="InternalError.Timeout")
        assert not channel.send(message()).permanent
        for code in (
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "FailedOperation.PhoneNumberInBlacklist",
            "AuthFailure.SignatureFailure",
        ):
            gw.fail(code=code)
            assert channel.send(message()).permanent, code


def test_tencent_a_stale_clock_is_temporary():
    with SmsGateway("tencent") as gw:
        channel = sms_tencent.from_config("sms", gw.channel_config(templates=templates("tencent")))
        channel._clock = lambda: time.time() - 3600
        result = channel.send(message())
        assert not result.ok and not result.permanent and "AuthFailure.SignatureExpire" in (result.error or "")


def test_webhook_without_templates_sends_the_event_and_its_parameters():
    with SmsGateway("webhook") as gw:
        channel = sms_webhook.from_config("sms", gw.channel_config())
        assert channel.send(message(event="case_resolved")).ok
        fields = gw.requests[0].fields
        assert fields["template"] == "case_resolved"
        assert fields["params"] == {"case": "GF-0001", "title": "路灯不亮"}
        assert fields["text"].startswith("【胜利乡网格中心】")


def test_webhook_status_mapping():
    with SmsGateway("webhook") as gw:
        channel = sms_webhook.from_config("sms", gw.channel_config(timeout_s=TIMEOUT))
        gw.fail(status=408)
        assert not channel.send(message()).permanent
        gw.fail(status=429)  # no Retry-After: the dispatcher's backoff
        result = channel.send(message())
        assert not result.permanent and result.retry_after is None
        gw.fail(status=404, code="no such route")
        result = channel.send(message())
        assert result.permanent and "no such route" in (result.error or "")
        gw.fail(status=302)
        assert channel.send(message()).permanent
        gw.fail(status=202, body=b"queued")  # accepted without an id
        result = channel.send(message())
        assert result.ok and result.provider_id is None


def test_webhook_idempotency_key_header_is_always_sendable():
    with SmsGateway("webhook") as gw:
        channel = sms_webhook.from_config("sms", gw.channel_config())
        assert channel.send(message(key="督办:GF-0001")).ok
        request = gw.requests[0]
        assert request.fields["idempotency_key"] == "督办:GF-0001"
        assert request.headers["idempotency-key"] == "%E7%9D%A3%E5%8A%9E%3AGF-0001"


def test_webhook_token_is_optional():
    with SmsGateway("webhook", token=None) as gw:
        channel = sms_webhook.from_config("sms", gw.channel_config())
        assert channel.send(message()).ok
        assert "authorization" not in gw.requests[0].headers

"""A provider's error text is stored masked (issue 19): :func:`notifications.channels.base.mask_secrets`
masks what looks like a secret (``key=``, ``access_token=``, ``secret=``, signatures, passwords in URLs)
and every secret the channel itself was configured with, wherever it appears verbatim;
:func:`channel_secrets` knows those of every kind of channel."""

from __future__ import annotations

from email.headerregistry import Address

import pytest

from notifications.channels.base import channel_secrets, mask_secrets
from notifications.channels.email import EmailChannel
from notifications.channels.sms_aliyun import AliyunSmsChannel
from notifications.channels.sms_tencent import TencentSmsChannel
from notifications.channels.sms_webhook import WebhookSmsChannel
from notifications.channels.webhook import WebhookChannel
from notifications.channels.wecom import WecomChannel

ROBOT_KEY = "693a91f6-7a0c-4bc4-97a0-0c2b4d1e5f0a"


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        (
            f"invalid webhook url https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}&debug=1",
            [ROBOT_KEY],
            ["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=****", "debug=1"],
        ),
        ("GET /gettoken?corpid=ww1&access_token=ACCESS-TOKEN-123 failed", ["ACCESS-TOKEN-123"], ["access_token=****"]),
        ('{"secret": "s3cr3t-value", "code": 7}', ["s3cr3t-value"], ['"secret": "****"', '"code": 7']),
        ("Signature=Zm9vYmFyYmF6cXV4 does not match", ["Zm9vYmFyYmF6cXV4"], ["Signature=****", "does not match"]),
        (
            "TC3-HMAC-SHA256 Credential=AKID/2024/sms, SignedHeaders=content-type;host, Signature=abcdef0123",
            ["abcdef0123"],
            ["SignedHeaders=content-type;host"],
        ),
        ("connect to smtp://gridflow:Pa55-word@mail:25 refused", ["Pa55-word"], ["smtp://gridflow:****@mail:25"]),
        ("password=hunter22 rejected; token: tok-999", ["hunter22", "tok-999"], ["rejected"]),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", ["eyJhbGciOiJIUzI1NiJ9"], ["Authorization: Bearer ****"]),
        ("errcode 45009 api freq out of limit", [], ["errcode 45009 api freq out of limit"]),
    ],
)
def test_secret_looking_values_are_masked(text, hidden, kept):
    masked = mask_secrets(text)
    for value in hidden:
        assert value not in masked, masked
    for value in kept:
        assert value in masked, masked


def test_the_channels_own_secrets_are_masked_wherever_they_appear():
    text = f"robot {ROBOT_KEY} removed; robot%20{ROBOT_KEY.upper()} too; short ab stays"
    masked = mask_secrets(text, [ROBOT_KEY, "ab"])
    assert ROBOT_KEY not in masked and "69****" in masked
    assert "short ab stays" in masked  # a value too short to be a secret is not hunted for
    assert mask_secrets(None) is None and mask_secrets("") == ""


@pytest.mark.parametrize(
    ("channel", "secrets"),
    [
        (
            WecomChannel(
                "wecom",
                groups={"mayingtai": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}"},
                webhook="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=township-robot-key",
            ),
            [ROBOT_KEY, "township-robot-key"],
        ),
        (
            AliyunSmsChannel(
                "sms",
                access_key_id="LTAI5tAliyunId",
                access_key_secret="aliyun-secret-0001",
                sign_name="胜利乡",
                templates={},
            ),
            ["LTAI5tAliyunId", "aliyun-secret-0001"],
        ),
        (
            TencentSmsChannel(
                "sms",
                secret_id="AKIDtencentId",
                secret_key="tencent-secret-0001",
                sdk_app_id="1400000000",
                sign_name="胜利乡",
                templates={},
            ),
            ["AKIDtencentId", "tencent-secret-0001"],
        ),
        (
            WebhookSmsChannel(
                "sms",
                url="https://gw:gw-pass-0001@sms.example.org/send?token=q-token-0001",
                secret="hmac-0001",
                token="bearer-0001",
            ),
            ["gw-pass-0001", "q-token-0001", "hmac-0001", "bearer-0001"],
        ),
        (
            EmailChannel(
                "email",
                host="smtp.example.org",
                port=465,
                security="ssl",
                sender=Address("网格中心", addr_spec="grid@example.org"),
                username="grid@example.org",
                password="smtp-password-0001",
            ),
            ["smtp-password-0001"],
        ),
        (WebhookChannel(7, "https://county.example.org/hook", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="), []),
    ],
    ids=["wecom", "aliyun", "tencent", "sms-webhook", "email", "webhook"],
)
def test_every_channel_names_its_secrets(channel, secrets):
    found = channel_secrets(channel)
    for secret in secrets:
        assert secret in found
    if isinstance(channel, WebhookChannel):
        assert "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=" in found
    for secret in found:
        assert secret not in mask_secrets(f"provider said: {secret}!", found)

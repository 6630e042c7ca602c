"""The SMS providers' request signatures against the worked examples in their documentation.

Sources (the examples are quoted, not computed here):

- Aliyun RPC signature V1, the general example (ECS DescribeRegions, AccessKeyId ``testid``,
  AccessKeySecret ``testsecret``; the documented parameter is spelled ``TimeStamp``) with the
  signature ``CT9X0VtwR86fNWSnsc6v8YGOjuE=``: "签名机制" / "Signature mechanism",
  https://help.aliyun.com/en/document_detail/130769.html (also
  https://www.alibabacloud.com/help/doc-detail/196741.htm, https://developer.aliyun.com/ask/210168).
- Aliyun Dysmsapi SendSms example (AccessKeyId ``testId``, AccessKeySecret ``testSecret``, sign name
  阿里云短信测试专用, template SMS_71390007) with its string to sign and the signature
  ``zJDF+Lrzhj/ThnlvIToysFRq6t4=``: the SMS API's signature page,
  https://help.aliyun.com/document_detail/56189.html (as reproduced, string to sign and signature
  alike, in several client libraries' tests; that page itself was not retrieved).
- Tencent Cloud signature v3 (TC3-HMAC-SHA256), the CVM DescribeInstances example (SecretKey
  ``Gu5t9xGARNpq86cd98joQYCN3EXAMPLE``, timestamp 1551113065) with its payload hash, canonical
  request hash, signature ``72e494ea…96525168`` and Authorization header: "签名方法 v3" / "接口鉴权 v3",
  the same example on every product's page, e.g. https://cloud.tencent.com/document/api/400/37390 and
  https://cloud.tencent.com/document/api/362/4208 (newer revisions mask the SecretId as
  ``AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******``; older ones print it with the ``EXAMPLE`` suffix used here).
- HMAC-SHA256 of the webhook body: RFC 4231 test case 2.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from notifications.channels import _http, sms_aliyun, sms_tencent, sms_webhook
from notifications.channels.base import Message, Recipient

# -- Aliyun RPC signature V1 -------------------------------------------------------------------

RPC_EXAMPLE = {
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}

SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Timestamp": "2017-07-12T02:42:19Z",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "Action": "SendSms",
    "Version": "2017-05-25",
    "RegionId": "cn-hangzhou",
    "PhoneNumbers": "15300000001",
    "SignName": "阿里云短信测试专用",
    "TemplateParam": '{"customer":"test"}',
    "TemplateCode": "SMS_71390007",
    "OutId": "123",
}
SMS_EXAMPLE_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
    "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4"
    "%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp"
    "%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)


def test_aliyun_rpc_documented_example():
    assert sms_aliyun.string_to_sign(RPC_EXAMPLE, "GET") == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert sms_aliyun.signature(RPC_EXAMPLE, "testsecret", "GET") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_send_sms_documented_example():
    assert sms_aliyun.string_to_sign(SMS_EXAMPLE, "GET") == SMS_EXAMPLE_STRING_TO_SIGN
    sig = sms_aliyun.signature(SMS_EXAMPLE, "testSecret", "GET")
    assert sig == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # the documented request URL carries it as Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D
    assert sms_aliyun.percent_encode(sig) == "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"


def test_aliyun_signature_ignores_a_signature_parameter_and_covers_every_other():
    base = sms_aliyun.signature(SMS_EXAMPLE, "testSecret", "GET")
    assert sms_aliyun.signature({**SMS_EXAMPLE, "Signature": "old"}, "testSecret", "GET") == base
    for key in SMS_EXAMPLE:
        assert sms_aliyun.signature({**SMS_EXAMPLE, key: SMS_EXAMPLE[key] + "x"}, "testSecret", "GET") != base, key
    assert sms_aliyun.signature(SMS_EXAMPLE, "testSecret", "POST") != base
    assert sms_aliyun.signature(SMS_EXAMPLE, "testSecreT", "GET") != base


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),  # space is %20, never +
        ("*", "%2A"),
        ("~-_.", "~-_."),
        ("/=&+:", "%2F%3D%26%2B%3A"),
        ("阿", "%E9%98%BF"),
        ("AZaz09", "AZaz09"),
    ],
)
def test_aliyun_percent_encoding(raw, encoded):
    assert sms_aliyun.percent_encode(raw) == encoded


# -- Tencent Cloud TC3-HMAC-SHA256 ---------------------------------------------------------------

TC3_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
TC3_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TC3_TIMESTAMP = 1551113065
TC3_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC3_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}


def test_tencent_tc3_documented_example_step_by_step():
    assert hashlib.sha256(TC3_PAYLOAD).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    canonical = sms_tencent.canonical_request(TC3_HEADERS, TC3_PAYLOAD)
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    to_sign = sms_tencent.string_to_sign(TC3_TIMESTAMP, "cvm", canonical)
    assert to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert (
        sms_tencent.tc3_signature(TC3_SECRET_KEY, TC3_TIMESTAMP, "cvm", to_sign)
        == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_tencent_tc3_documented_authorization_header():
    assert sms_tencent.authorization(TC3_SECRET_ID, TC3_SECRET_KEY, TC3_TIMESTAMP, "cvm", TC3_HEADERS, TC3_PAYLOAD) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_tencent_date_is_the_utc_date_of_the_timestamp():
    # 1551113065 is 2019-02-26 00:44:25 in Beijing and still 2019-02-25 in UTC (the doc's own warning)
    assert datetime.fromtimestamp(TC3_TIMESTAMP, UTC).date().isoformat() == "2019-02-25"
    assert "\n2019-02-25/sms/tc3_request\n" in sms_tencent.string_to_sign(TC3_TIMESTAMP, "sms", "x")


def test_tencent_header_names_and_values_are_canonicalised():
    messy = {"HOST": " cvm.tencentcloudapi.com ", "content-type": "Application/JSON; charset=utf-8"}
    assert sms_tencent.canonical_request(messy, TC3_PAYLOAD) == sms_tencent.canonical_request(TC3_HEADERS, TC3_PAYLOAD)


# -- the webhook's body signature ------------------------------------------------------------------


def test_webhook_body_signature_is_hmac_sha256_rfc4231_case_2():
    assert sms_webhook.body_signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


# -- the channels sign what they send ---------------------------------------------------------------

TEMPLATES = {"sla_breach": {"code": "SMS_000001", "params": ["case", "title"]}}


def _message(**params: str) -> Message:
    return Message(
        idempotency_key="notice:42",
        event="sla_breach",
        recipient=Recipient("p-1", "张三", phone="+86 138-0013-8000"),
        subject="已超时",
        text="GF-0001 已超时",
        params={"case": "GF-0001", "title": "路灯 不亮*", "sms": "【胜利乡】GF-0001 已超时", **params},
    )


def test_aliyun_channel_signs_its_request():
    channel = sms_aliyun.from_config(
        "sms",
        {"access_key_id": "testId", "access_key_secret": "testSecret", "sign_name": "胜利乡", "templates": TEMPLATES},
    )
    channel._clock = lambda: 1499827339.0  # 2017-07-12T02:42:19Z
    channel._nonce = lambda: "45e25e9b-0a6f-4070-8c85-2956eda1b466"
    params = channel.request(_message())
    assert isinstance(params, dict)
    assert params["Timestamp"] == "2017-07-12T02:42:19Z"
    assert params["PhoneNumbers"] == "13800138000"
    assert params["OutId"] == "notice:42"
    assert json.loads(params["TemplateParam"]) == {"case": "GF-0001", "title": "路灯 不亮*"}
    assert params["Signature"] == sms_aliyun.signature(params, "testSecret", "POST")


def test_tencent_channel_signs_its_request():
    channel = sms_tencent.from_config(
        "sms",
        {
            "secret_id": TC3_SECRET_ID,
            "secret_key": TC3_SECRET_KEY,
            "sdk_app_id": "1400000001",
            "sign_name": "胜利乡",
            "templates": {"sla_breach": {"code": 1234567, "params": ["case", "title"]}},
        },
    )
    channel._clock = lambda: TC3_TIMESTAMP
    prepared = channel.request(_message())
    assert isinstance(prepared, tuple)
    headers, payload = prepared
    body = json.loads(payload)
    assert body["PhoneNumberSet"] == ["+8613800138000"]
    assert body["TemplateId"] == "1234567" and body["TemplateParamSet"] == ["GF-0001", "路灯 不亮*"]
    assert body["SessionContext"] == "notice:42"
    assert headers["Host"] == "sms.tencentcloudapi.com" and headers["X-TC-Timestamp"] == "1551113065"
    assert headers["Authorization"] == sms_tencent.authorization(
        TC3_SECRET_ID, TC3_SECRET_KEY, TC3_TIMESTAMP, "sms", headers, payload
    )
    assert headers["Authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={TC3_SECRET_ID}/2019-02-25/sms/tc3_request, "
    )


def test_webhook_channel_signs_its_body():
    channel = sms_webhook.from_config("sms", {"url": "https://sms.example.org/send", "secret": "s3cret-key"})
    prepared = channel.request(_message())
    assert isinstance(prepared, tuple)
    headers, body = prepared
    assert headers["X-Gridflow-Signature"] == sms_webhook.body_signature("s3cret-key", body)
    assert headers["Idempotency-Key"] == "notice:42"
    assert "Authorization" not in headers  # no token configured


# -- Retry-After ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 120 ", 120.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_retry_after_in_seconds(value, seconds):
    assert _http.parse_retry_after(value) == seconds


def test_retry_after_as_an_http_date():
    assert _http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    later = _http.parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert later == _http.MAX_RETRY_AFTER

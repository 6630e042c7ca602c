"""`gridflow notices list|show|retry|preview|dispatch` as a user runs them (SQLite home)."""

from __future__ import annotations

import json

from tests import runtime_support as rt
from tests.support import T0


def test_a_receipt_is_staged_listed_sent_and_shown(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=T0)
    rt.init(env)
    assert (
        rt.cli(["case", "report", "-g", rt.GRID, "-a", rt.REPORTER, "-t", "马营台村1社水管破裂"], env).returncode == 0
    )
    pending = json.loads(rt.cli(["notices", "list", "--json"], env).stdout)
    assert [(n["status"], n["event"], n["to"]) for n in pending["notices"]] == [
        ("pending", "case_received", rt.REPORTER)
    ]
    sent = rt.cli(["notices", "dispatch"], env)
    assert sent.returncode == 0 and "messages 1" in sent.stdout and "已受理" in sent.stdout
    shown = json.loads(rt.cli(["notices", "show", "1", "--json"], env).stdout)
    assert shown["status"] == "sent" and shown["phone"] == "138****0011"
    assert [h["outcome"] for h in shown["history"]] == ["sent"]
    table = rt.cli(["notices", "show", "1"], env).stdout
    assert "138****0011" in table and "13800000011" not in table  # phone numbers masked
    retry = rt.cli(["notices", "retry", "1"], env)
    assert retry.returncode == 4 and "only failed notices" in retry.stderr


def test_preview_renders_every_event_on_every_channel(tmp_path):
    env = rt.environment(tmp_path / "home", "", "", now=T0)
    events = rt.cli(["notices", "preview", "--list"], env).stdout.split()
    assert {"sla_breach", "digest", "case_resolved", "quarterly_posting"} <= set(events)
    shown = rt.cli(["notices", "preview", "sla_breach"], env)
    assert shown.returncode == 0 and "短信 sms" in shown.stdout and "Subject:" in shown.stdout
    unknown = rt.cli(["notices", "preview", "no_such_event"], env)
    assert unknown.returncode == 3 and "sla_breach" in unknown.stderr


def test_preview_renders_the_override_and_a_runaway_one_is_refused_with_its_name(tmp_path):
    templates = tmp_path / "templates" / "zh-CN"
    templates.mkdir(parents=True)
    (templates / "sla_breach.sms.txt").write_text("【本乡】{{ title }} 已超时，请速办", encoding="utf-8")
    config = tmp_path / "notifications.yaml"
    config.write_text(f"channels:\n  console: {{kind: console}}\ntemplates: {templates.parent}\n", encoding="utf-8")
    env = rt.environment(tmp_path / "home", "", "", now=T0, GRIDFLOW_NOTIFICATIONS_FILE=str(config))
    shown = rt.cli(["notices", "preview", "sla_breach", "--channel", "sms"], env)
    assert shown.returncode == 0 and "【本乡】" in shown.stdout and "已超时，请速办" in shown.stdout
    (templates / "sla_breach.sms.txt").write_text("{{ 'a' * 10**8 }}", encoding="utf-8")
    bomb = rt.cli(["notices", "preview", "sla_breach", "--channel", "sms"], env)
    assert bomb.returncode != 0 and "template sla_breach.sms.txt stopped" in bomb.stderr, bomb.stderr
    assert "Traceback" not in bomb.stderr


def test_a_bad_notifications_file_is_reported_with_its_place_and_sends_nothing(tmp_path):
    bad = tmp_path / "notifications.yaml"
    bad.write_text("channels:\n  sms: {kind: carrier_pigeon}\norder: [sms, fax]\nquiet_hours: late\n", encoding="utf-8")
    env = rt.environment(tmp_path / "home", "", "", now=T0, GRIDFLOW_NOTIFICATIONS_FILE=str(bad))
    rt.init(env)
    rt.cli(["case", "report", "-g", rt.GRID, "-a", rt.REPORTER, "-t", "测试"], env)
    result = rt.cli(["notices", "dispatch"], env)
    assert result.returncode == 1, result.stderr
    for expected in ("notifications.yaml:2:", "carrier_pigeon", "'fax'", "21:00-07:30"):
        assert expected in result.stderr
    assert json.loads(rt.cli(["notices", "list", "--json"], env).stdout)["counts"] == {"pending": 1}


def test_the_sample_notifications_file_loads_with_its_secrets_from_the_environment(tmp_path):
    from notifications.config import load

    secrets = {
        name: "x"
        for name in (
            "GRIDFLOW_ALIYUN_KEY_ID",
            "GRIDFLOW_ALIYUN_KEY_SECRET",
            "GRIDFLOW_SMTP_PASSWORD",
            "GRIDFLOW_WECOM_TOWNSHIP",
            "GRIDFLOW_WECOM_MAYINGTAI",
        )
    }
    secrets["GRIDFLOW_WECOM_TOWNSHIP"] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=township-key"
    secrets["GRIDFLOW_WECOM_MAYINGTAI"] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=village-key"
    config = load(rt.ROOT / "config" / "notifications.yaml.sample", tmp_path / "n.log", secrets)
    assert config.order == ("wecom", "sms", "email", "console")
    assert config.preferences["p-peng-li"] == ("sms", "email")
    assert "township-key" not in repr(config.channels["wecom"])
    missing = rt.cli(
        ["notices", "dispatch"],
        rt.environment(
            tmp_path / "h",
            "",
            "",
            now=T0,
            GRIDFLOW_NOTIFICATIONS_FILE=str(rt.ROOT / "config" / "notifications.yaml.sample"),
        ),
    )
    assert missing.returncode == 1 and "GRIDFLOW_SMTP_PASSWORD is not set" in missing.stderr

"""serve's detection and alert-output settings: flags and file agree, mistakes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsentry.errors import UsageError
from vpnsentry.serve.config import Listen, load

LISTEN = {"syslog_tcp": ["127.0.0.1:0"]}


def test_file_settings_and_flag_overrides(tmp_path: Path) -> None:
    conf = tmp_path / "serve.toml"
    conf.write_text(
        'syslog_tcp = ["127.0.0.1:0"]\ndetect = false\nlookback_hours = 6.0\n'
        'webhook = "https://soar.example/hook"\nwebhook_header = ["Authorization: Bearer x"]\n'
        'cef = "192.0.2.50:514"\ncef_protocol = "tcp"\n'
    )
    cfg = load(conf, {"detect": True, "full_every_minutes": 0.0})
    assert cfg.detect is True and cfg.lookback_hours == 6.0 and cfg.full_every_minutes == 0.0
    assert cfg.cef == Listen("192.0.2.50", 514) and cfg.cef_protocol == "tcp"
    assert cfg.webhook_header == ["Authorization: Bearer x"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"webhook": "file:///etc/passwd"}, "http"),
        ({"cef_protocol": "sctp"}, "udp or tcp"),
        ({"cef": "siem.example:514"}, "ADDR:PORT"),
        ({"webhook_header": ["no colon"]}, "Name: value"),
        ({"webhook_header": ["X-A: b\r\nX-Injected: 1"]}, "Name: value"),
        ({"lookback_hours": 0.0}, "lookback_hours"),
    ],
)
def test_mistakes_are_refused_before_any_port_opens(
    override: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load(None, {**LISTEN, **override})


def test_detect_must_be_a_boolean_in_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "serve.toml"
    conf.write_text('syslog_tcp = ["127.0.0.1:0"]\ndetect = "yes"\n')
    with pytest.raises(UsageError, match="true or false"):
        load(conf, {})


def test_outputs_report_what_they_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.report.sample import alerts_frame
    from vpnsentry.serve.alerting import build
    from vpnsentry.serve.metrics import Metrics

    cfg = load(None, {**LISTEN, "store": str(tmp_path / "store"), "alerts_stdout": True})
    metrics = Metrics()
    alerting = build(cfg, metrics, lambda: None, lambda _: None)
    alerts = alerts_frame()
    alerting.sinks[0].send(alerts)
    alerting.close()
    text = metrics.render()
    assert f'vpnsentry_alerts_delivered_total{{output="stdout"}} {alerts.height}' in text
    assert 'vpnsentry_alerts_dead_lettered_total{output="stdout"} 0' in text
    assert len(capsys.readouterr().out.splitlines()) == alerts.height

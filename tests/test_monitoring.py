"""examples/monitoring: the alerting rules pass promtool's check and their unit tests, the
dashboard loads, and every metric the rules and the dashboard use is one the relay exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from relay.metrics import Metrics
from tests.conftest import require_tool

PROMTOOL = "/usr/bin/promtool"
MONITORING = Path(__file__).resolve().parent.parent / "examples" / "monitoring"
RULES = MONITORING / "postform-alerts.yml"
RULE_TESTS = MONITORING / "postform-alerts.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

# Words of PromQL that look like metric names: keywords, and Prometheus' own `up`.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "up",
}
# Label lists after by/without/on/ignoring/group_left/group_right name labels, not metrics.
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
UP = re.compile(r"(?<![\w:])up(?![\w:])")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    require_tool(PROMTOOL)
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=MONITORING
    )


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, regexes
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges: [1h], [$__rate_interval]
    text = LABEL_LISTS.sub("", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    text = re.sub(r"(?<![\w:])\d[\w.]*", "", text)  # numbers, durations (5m), 1e3
    names = set()
    for found in IDENTIFIER.finditer(text):
        rest = text[found.end() :].lstrip()
        if rest.startswith("("):  # a function or an aggregation: rate(, sum(
            continue
        if found.group().lower() not in KEYWORDS:
            names.add(found.group())
    return names


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> dict[str, str]:
    return {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    }


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """The sample names a relay's registry exposes, as generate_latest writes them."""
    metrics = Metrics()
    # Labelled metrics show no sample until a child exists.
    metrics.messages.labels("example.com", "accepted").inc()
    metrics.recipients.labels("example.com", "delivered").inc()
    metrics.bounces.labels("example.com", "hard", "report").inc()
    metrics.complaints.labels("example.com").inc()
    metrics.webhook_events.labels("crm", "sent").inc()
    metrics.webhook_outbox.labels("crm").set(0)
    text = generate_latest(metrics.registry).decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    samples = {
        re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group()
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    silent = {f for f in families if not any(s.startswith(f) for s in samples)}
    assert not silent, f"give these labelled metrics a child in this fixture: {silent}"
    return samples


def test_the_rules_pass_promtools_check() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_for_severity_and_annotations_and_a_test() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    tested = RULE_TESTS.read_text()
    for rule in (rule for group in groups for rule in group["rules"]):
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        assert f"alertname: {name}\n" in tested, f"{name} has no promtool test"


def test_the_metric_name_check_catches_a_made_up_metric(exported: set[str]) -> None:
    expr = (
        'sum by (sender_domain) (rate(postform_complaint_reports_total{outcome="x"}[1h]))'
        " / sum(rate(postform_recipients_total[$__rate_interval])) > 0.001 and up == 0"
    )
    assert metric_names(expr) == {"postform_complaint_reports_total", "postform_recipients_total"}
    assert metric_names(expr) - exported == {"postform_complaint_reports_total"}


def test_every_metric_in_the_rules_is_exported(exported: set[str]) -> None:
    exprs = rule_exprs()
    used = {alert: metric_names(expr) for alert, expr in exprs.items()}
    assert all(names or UP.search(exprs[alert]) for alert, names in used.items()), used
    unknown = {alert: names - exported for alert, names in used.items() if names - exported}
    assert not unknown, f"not exported by relay/metrics.py: {unknown}"


def test_every_metric_in_the_dashboard_is_exported(exported: set[str]) -> None:
    exprs = dashboard_exprs()
    used = {where: metric_names(expr) for where, expr in exprs.items()}
    assert all(names or UP.search(exprs[where]) for where, names in used.items()), used
    unknown = {where: names - exported for where, names in used.items() if names - exported}
    assert not unknown, f"not exported by relay/metrics.py: {unknown}"


def test_the_dashboard_loads_and_every_panel_has_a_target() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 39
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["panels"]
    for panel in board["panels"]:
        assert panel.get("targets"), f"panel {panel['title']!r} has no target"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])


def test_the_dashboards_promql_parses(tmp_path: Path) -> None:
    """promtool parses each dashboard expression as a recording rule, Grafana's variables
    replaced with values."""
    values = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}
    rules = []
    for number, expr in enumerate(dashboard_exprs().values()):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:expr_{number}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr

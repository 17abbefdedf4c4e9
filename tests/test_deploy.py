"""What deploy/ and examples/ ship: the Grafana dashboard and the Prometheus rules parse, and every metric they name
is in a real scrape of a real `console-proxy serve` (upstream mode on a real redis-server, one event delivered);
the compose file names only real settings and files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from console_proxy.cli.flags import OPTIONS
from console_proxy.cli.values import env_of

from support.collector import Collector
from support.paths import ROOT
from support.redis_server import RedisServer
from support.servers import serving

DASHBOARD = ROOT / "deploy" / "grafana" / "console-proxy.json"
RULES = ROOT / "deploy" / "prometheus" / "console-proxy-rules.yaml"
COMPOSE = ROOT / "examples" / "compose-redis.yaml"
METRIC = re.compile(r"\b((?:console_proxy|process)_[a-z_]+)\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "console-proxy" and dashboard["panels"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    return exprs


def rules_exprs() -> list[str]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert all(set(rule) <= {"alert", "expr", "for", "labels", "annotations"} for rule in rules)
    assert all(isinstance(rule["alert"], str) and rule["annotations"]["summary"] for rule in rules)
    assert len({rule["alert"] for rule in rules}) == len(rules)
    return [str(rule["expr"]) for rule in rules]


def scraped_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_dashboard_and_the_alerts_name_is_in_a_real_scrape(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    named = {name for expr in dashboard_exprs() + rules_exprs() for name in METRIC.findall(expr)}
    assert {"console_proxy_spool_events", "console_proxy_queue_consumers", "process_cpu_seconds_total"} <= named
    args = ("--upstream", collector.url, "--queue", redis_server.url, "--state-dir", str(tmp_path / "state"))
    with serving(tmp_path, *args, "--batch-max-delay-s", "0.05") as served:
        event = {"type": "Data/SET_TABLE", "route": "/console/data/db/schema/s/tables/t/browse"}
        assert httpx.post(served.base + "/_telemetry/v1/events", json=[event]).status_code == 202
        collector.wait_for_events(1)
        scrape = httpx.get(served.base + "/metrics").text
    assert named - scraped_names(scrape) == set()


def test_the_compose_file_names_only_real_settings_and_files() -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    proxy = compose["services"]["proxy"]
    assert (COMPOSE.parent / proxy["build"] / "Dockerfile").is_file()
    known = {env_of(option.field) for option in OPTIONS}
    assert set(proxy["environment"]) - known == set()
    [mount] = compose["services"]["balancer"]["volumes"]
    source, target, _ = mount.split(":")
    assert (COMPOSE.parent / source).resolve() == ROOT / "deploy" / "nginx" / "console-proxy.conf"
    assert target == "/etc/nginx/conf.d/default.conf"

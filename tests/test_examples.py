"""examples/compose-hasura.yaml: what can be checked without Docker and without Hasura. The file parses and says
what docs/dropin.md says; the recipe at its top runs; and each gate's command line and environment, as written,
start a real `console-proxy serve` (with only the port, the bound address and the paths moved into the test's
folder). Hasura itself is not run (no image can be had here): the relaying gate answers 502 for it, as it must."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support import hasura_bodies
from support.paths import ROOT
from support.servers import serving

EXAMPLE = ROOT / "examples" / "compose-hasura.yaml"
DROPIN = ROOT / "docs" / "dropin.md"
SECRET = "example-admin-secret"
TELEMETRY_HOST = "telemetry.hasura.io"


def compose() -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_example_is_hasura_postgres_and_the_gate_published_in_hasuras_place() -> None:
    services = compose()["services"]
    assert sorted(services) == ["gate", "gate-collector", "hasura", "postgres"]
    hasura, gate, collector = services["hasura"], services["gate"], services["gate-collector"]
    assert "ports" not in hasura and "ports" not in services["postgres"]
    assert gate["ports"] == ["8080:8080"]
    assert hasura["environment"]["HASURA_GRAPHQL_CONSOLE_ASSETS_DIR"] == "/srv/console-assets"
    assert hasura["environment"]["SYSTEM_CERTIFICATE_PATH"] == "/etc/console-proxy/trust"
    address = collector["networks"]["hasura"]["ipv4_address"]
    assert hasura["extra_hosts"] == [f"{TELEMETRY_HOST}:{address}"]
    subnet = compose()["networks"]["hasura"]["ipam"]["config"][0]["subnet"]
    assert address.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]
    for service in (gate, collector):
        # The gate's image is the repository's own Dockerfile (issue 21): built from the top of the checkout.
        assert (EXAMPLE.parent / service["build"]).resolve() == ROOT
        assert service["entrypoint"] == ["console-proxy"]
    assert gate["command"][gate["command"].index("--hasura-url") + 1] == "http://hasura:8080"


def test_the_lines_docs_dropin_quotes_are_the_examples() -> None:
    doc = DROPIN.read_text(encoding="utf-8")
    section = doc.split("Compose (the example's lines):", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert [line for line in block.splitlines() if line not in lines] == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    alias = "alias hasura='console-proxy hasura --gate http://127.0.0.1:9695 --'"
    assert alias in readme and alias in doc


def recipe() -> list[str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    return [line.removeprefix("#   ") for line in text.splitlines() if line.startswith("#   ")]


def run_recipe(directory: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in recipe():
        if line.startswith("sudo chown"):
            if os.getuid() != 0:
                continue  # only root may give a file away; the gates below run as this user
            line = line.removeprefix("sudo ").replace("10001", str(os.getuid()))
        done = subprocess.run(["bash", "-ec", line], cwd=directory, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}: {done.stderr}"


def gate_args(service: dict[str, Any], tmp: Path) -> list[str]:
    """The service's command line with what only a container has moved into `tmp`, without its port (the tests'
    `serving` takes a free one)."""
    args: list[str] = list(service["command"])
    assert args[0] == "serve"
    at = args.index("--port")
    del args[at : at + 2]
    values = {
        "--host": "127.0.0.1",
        "--state-dir": str(tmp / "state"),
        "--ssl-certfile": str(tmp / "certs" / "telemetry.hasura.io.pem"),
        "--ssl-keyfile": str(tmp / "certs" / "telemetry.hasura.io-key.pem"),
    }
    for flag, value in values.items():
        if flag in args:
            args[args.index(flag) + 1] = value
    return args[1:]


def gate_env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment, each `${VAR:?...}` given the value an operator would set."""
    return {k: re.sub(r"\$\{HASURA_GRAPHQL_ADMIN_SECRET[^}]*\}", SECRET, v) for k, v in service["environment"].items()}


def healthy(service: dict[str, Any], replace: dict[str, str]) -> bool:
    """Whether the service's health check, run here with `replace` applied to its code, passes."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = test[3]
    for old, new in replace.items():
        assert old in code
        code = code.replace(old, new)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode == 0


def test_the_recipe_makes_the_certificate_and_a_trust_store_with_the_public_cas_and_ours(tmp_path: Path) -> None:
    run_recipe(tmp_path)
    trust = tmp_path / "certs" / "trust"
    assert sorted(p.name for p in trust.iterdir()) == ["ca-certificates.crt", "ca.pem"]
    assert (trust / "ca.pem").read_bytes() == (tmp_path / "certs" / "ca.pem").read_bytes()


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    run_recipe(tmp_path)
    return tmp_path


def test_the_relaying_gate_starts_with_the_examples_settings(prepared: Path) -> None:
    service = compose()["services"]["gate"]
    ready = "/_telemetry/v1/healthz"  # the bare /healthz is Hasura's in this mode
    with serving(prepared, *gate_args(service, prepared), env=gate_env(service), ready_path=ready) as gate:
        health = httpx.get(gate.base + "/_telemetry/v1/healthz")
        status = httpx.get(gate.base + "/_telemetry/v1/status").json()
        hasura = httpx.get(gate.base + "/v1/version")
        by_name = httpx.get(gate.base + "/v1/version", headers={"host": "localhost:8080"})
        assert healthy(service, {"http://127.0.0.1:8080": gate.base})
    assert health.json() == {"status": "live"}
    assert status["rewrites"] == {"page": 0, "script": 0}
    assert (hasura.status_code, by_name.status_code) == (502, 502)  # no Hasura here: relayed, and unreachable
    assert "relaying to Hasura at http://hasura:8080" in gate.output()


def test_the_collector_gate_takes_the_servers_report_as_telemetry_hasura_io(prepared: Path) -> None:
    service = compose()["services"]["gate-collector"]
    context = ssl.create_default_context(cafile=str(prepared / "certs" / "ca.pem"))
    ready = ssl.create_default_context(cafile=str(prepared / "certs" / "ca.pem"))
    ready.check_hostname = False  # the readiness poll names 127.0.0.1, which the certificate does not
    args = gate_args(service, prepared)
    with (
        serving(prepared, *args, env=gate_env(service), scheme="https", verify=ready) as gate,
        httpx.Client(verify=context, headers={"host": TELEMETRY_HOST}) as client,
    ):
        port = gate.base.rsplit(":", 1)[1]
        ca = str(prepared / "certs" / "ca.pem")
        assert healthy(service, {"'127.0.0.1', 443": f"'127.0.0.1', {port}", "/certs/ca.pem": ca})
        answer = client.post(
            gate.base + "/v1/http",
            content=json.dumps(hasura_bodies.V2_NEWEST).encode(),
            extensions={"sni_hostname": TELEMETRY_HOST},
        )
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1, "dropped": 0})

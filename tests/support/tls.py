"""A test CA and a server certificate from it, made with `console-proxy tls` itself (its real use)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

from click.testing import CliRunner

from console_proxy.cli.main import main


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client's TLS context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificates(directory: Path, *names: str) -> Certificates:
    """`console-proxy tls make-ca` and `make-cert --name NAME...` into `directory`."""
    runner = CliRunner()
    made = runner.invoke(main, ["tls", "make-ca", "--out", str(directory)])
    assert made.exit_code == 0, made.output
    flags = [arg for name in names for arg in ("--name", name)]
    made = runner.invoke(main, ["tls", "make-cert", "--ca", str(directory), *flags])
    assert made.exit_code == 0, made.output
    first = names[0]
    return Certificates(directory / "ca.pem", directory / f"{first}.pem", directory / f"{first}-key.pem")

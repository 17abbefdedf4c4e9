"""`console-proxy tls make-ca|make-cert`: a CA Hasura can be told to trust, and the gate's certificate from it."""

from __future__ import annotations

import ssl
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from console_proxy.cli.main import main

from support.tls import make_certificates


def test_the_certificate_is_for_its_names_signed_by_the_ca_and_the_keys_are_private(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path, "telemetry.hasura.io", "127.0.0.1")
    chain = x509.load_pem_x509_certificates(certs.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["telemetry.hasura.io"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert chain[0].issuer == ca.subject and chain[1] == ca
    chain[0].verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    for key in (certs.key, tmp_path / "ca-key.pem"):
        assert key.stat().st_mode & 0o777 == 0o600
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certs.cert, certs.key)  # what serve --ssl-certfile/--ssl-keyfile does


def test_files_are_not_replaced_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["tls", "make-ca", "--out", str(tmp_path)]).exit_code == 0
    before = (tmp_path / "ca.pem").read_bytes()
    again = runner.invoke(main, ["tls", "make-ca", "--out", str(tmp_path)])
    assert (again.exit_code, again.output) == (2, f"{tmp_path / 'ca-key.pem'} exists; give --force to replace it.\n")
    assert (tmp_path / "ca.pem").read_bytes() == before
    assert runner.invoke(main, ["tls", "make-ca", "--out", str(tmp_path), "--force"]).exit_code == 0
    assert (tmp_path / "ca.pem").read_bytes() != before


def test_a_certificate_needs_the_ca(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["tls", "make-cert", "--ca", str(tmp_path)])
    assert done.exit_code == 2
    assert done.output.startswith(f"the CA in {tmp_path} cannot be read (")
    assert done.output.endswith("make one with `console-proxy tls make-ca`.\n")

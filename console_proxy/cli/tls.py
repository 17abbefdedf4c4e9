"""`console-proxy tls make-ca|make-cert`: a private CA, and a certificate from it for telemetry.hasura.io, so that a
Hasura server given a host alias for that name posts its telemetry to the gate over TLS (docs/dropin.md).

Uses the `cryptography` library: `pip install 'console-proxy[tls]'`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

import click

from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.hasura.endpoints import TELEMETRY_HOST

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_DAYS = 3650
CERT_DAYS = 825


def _require_cryptography() -> None:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        click.echo("console-proxy tls needs the cryptography library: pip install 'console-proxy[tls]'.", err=True)
        raise SystemExit(EXIT_CONFIG) from None


def _write(path: Path, data: bytes, *, private: bool, force: bool) -> None:
    if path.exists() and not force:
        click.echo(f"{path} exists; give --force to replace it.", err=True)
        raise SystemExit(EXIT_CONFIG)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if private:
        os.chmod(path, 0o600)


@click.group("tls", short_help="Make a private CA and a certificate for telemetry.hasura.io (pip extra: tls).")
def tls() -> None:
    """Make a private CA (make-ca) and a server certificate from it (make-cert) for the gate's HTTPS listener
    (serve --ssl-certfile/--ssl-keyfile), named telemetry.hasura.io by default."""


@tls.command("make-ca")
@click.option("--out", "out", metavar="DIR", default="certs", show_default=True, help="Where ca.pem and ca-key.pem go.")
@click.option("--name", default="console-proxy private CA", show_default=True, help="The CA's common name.")
@click.option("--days", type=click.IntRange(1, 36500), default=CA_DAYS, show_default=True, help="Validity.")
@click.option("--force", is_flag=True, help="Replace files that exist.")
def make_ca(out: str, name: str, days: int, force: bool) -> None:
    """A new private CA: DIR/ca.pem (give it to Hasura to trust) and DIR/ca-key.pem (keep it secret)."""
    _require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = Path(out)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(directory / CA_KEY, key_pem, private=True, force=force)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), private=False, force=force)
    click.echo(f"CA: {directory / CA_CERT} (trust this), key: {directory / CA_KEY} (keep it secret)")


@tls.command("make-cert")
@click.option("--ca", "ca_dir", metavar="DIR", default="certs", show_default=True, help="Where make-ca wrote the CA.")
@click.option("--out", "out", metavar="DIR", default=None, help="Where NAME.pem and NAME-key.pem go.  [default: --ca]")
@click.option(
    "--name",
    "names",
    metavar="NAME",
    multiple=True,
    help=f"A DNS name or IP address the certificate is for (repeatable; the first names the files).  "
    f"[default: {TELEMETRY_HOST}]",
)
@click.option("--days", type=click.IntRange(1, 3650), default=CERT_DAYS, show_default=True, help="Validity.")
@click.option("--force", is_flag=True, help="Replace files that exist.")
def make_cert(ca_dir: str, out: str | None, names: tuple[str, ...], days: int, force: bool) -> None:
    """A server certificate signed by the CA: DIR/NAME.pem (the certificate, then the CA's) and DIR/NAME-key.pem,
    for `serve --ssl-certfile DIR/NAME.pem --ssl-keyfile DIR/NAME-key.pem`."""
    _require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = names or (TELEMETRY_HOST,)
    ca = Path(ca_dir)
    try:
        ca_cert = x509.load_pem_x509_certificate((ca / CA_CERT).read_bytes())
        ca_key = serialization.load_pem_private_key((ca / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as error:
        click.echo(f"the CA in {ca} cannot be read ({error}); make one with `console-proxy tls make-ca`.", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        click.echo(f"{ca / CA_KEY} is not an RSA key made by `console-proxy tls make-ca`.", err=True)
        raise SystemExit(EXIT_CONFIG)
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = Path(out) if out else ca
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    _write(directory / f"{names[0]}-key.pem", key_pem, private=True, force=force)
    _write(directory / f"{names[0]}.pem", chain, private=False, force=force)
    click.echo(
        f"certificate: {directory / f'{names[0]}.pem'}, key: {directory / f'{names[0]}-key.pem'}"
        f" (for {', '.join(names)}, until {cert.not_valid_after_utc.date().isoformat()})"
    )

"""A real nginx for tests: Debian's binary in the foreground, with one server file of the repository, its addresses
put to the test's own, everything else as shipped.

`make test` installs the package (nginx-light) when it is missing; a machine without it fails these tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from support.servers import free_port, spawn, stop_process

STARTUP_TIMEOUT_S = 10.0


def adapted(text: str, replacements: Mapping[str, str]) -> str:
    """`text` with each key replaced by its value; each key must occur exactly once (the file's shape is tested)."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the nginx file"
        text = text.replace(old, new)
    return text


@contextlib.contextmanager
def running_nginx(directory: Path, server_file: Path, replacements: Mapping[str, str]) -> Iterator[int]:
    """Serve `server_file` (adapted) in an http block of its own; yields the port it listens on (127.0.0.1)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed: run `make nginx` (Debian package nginx-light)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = adapted(
        server_file.read_text(encoding="utf-8"), {"listen 80;": f"listen 127.0.0.1:{port};", **replacements}
    )
    (directory / "server.conf").write_text(server, encoding="utf-8")
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
        f"  fastcgi_temp_path {directory}/fastcgi;\n  uwsgi_temp_path {directory}/uwsgi;\n"
        f"  scgi_temp_path {directory}/scgi;\n"
        f"  include {directory}/server.conf;\n}}\n",
        encoding="utf-8",
    )
    with open(directory / "nginx.out", "ab") as out:
        proc = spawn(
            [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start:\n" + (directory / "error.log").read_text(errors="replace"))
            time.sleep(0.05)
        yield port
    finally:
        stop_process(proc, timeout_s=10.0)

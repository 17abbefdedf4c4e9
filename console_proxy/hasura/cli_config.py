"""The Hasura CLI's global config file (`~/.hasura/config.json`): where it is, reading it, writing it safely.

An edge module (file I/O); the pure modules are handed what it read.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings
from console_proxy.hasura.optout import TELEMETRY_FLAG, TelemetryDecision, decide_telemetry, needs_cli_config

# The CLI writes config.json; .config.json is read too (docs/design.md, "Identity and opt-out").
CLI_CONFIG_NAMES = ("config.json", ".config.json")


def cli_config_path(settings: Settings, *, home: Path | None = None) -> Path:
    """`--cli-config`, else the first of ~/.hasura/config.json and ~/.hasura/.config.json that exists,
    else ~/.hasura/config.json (where it will be created)."""
    if settings.cli_config is not None:
        return settings.cli_config
    directory = (home if home is not None else Path.home()) / ".hasura"
    for name in CLI_CONFIG_NAMES:
        if (directory / name).is_file():
            return directory / name
    return directory / CLI_CONFIG_NAMES[0]


def read_cli_config(path: Path) -> dict[str, Any]:
    """The CLI's global config as a dict; `{}` when the file does not exist; SettingsError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        message = f"The CLI config {path} cannot be read ({reason}); expected a readable JSON file."
        raise SettingsError(message) from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise SettingsError(f"The CLI config {path} is not a JSON object; expected the Hasura CLI's global config.")
    return document


def write_cli_config(path: Path, document: dict[str, Any], *, replace: bool) -> None:
    """Write the config atomically (a temporary file, fsynced, then renamed into place).

    With `replace` false an existing file is kept (FileExistsError): when another process created it first,
    theirs wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(document, indent=2) + "\n").encode()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".console-proxy-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temp, path)
        else:
            # link() refuses to overwrite.
            os.link(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def resolve_telemetry(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    home: Path | None = None,
    setting_name: str = TELEMETRY_FLAG,
) -> TelemetryDecision:
    """`optout.decide_telemetry` with the CLI config read from disk when (and only when) it can decide."""
    env = os.environ if env is None else env
    if not needs_cli_config(settings, env):
        return decide_telemetry(settings, env, None, setting_name=setting_name)
    path = cli_config_path(settings, home=home)
    return decide_telemetry(
        settings, env, read_cli_config(path), setting_name=setting_name, cli_config_source=str(path)
    )


def cli_config_fingerprint(settings: Settings, *, home: Path | None = None) -> tuple[str, int, int, int] | None:
    """Which CLI config file decides and its (mtime, size, inode), for noticing a change with one `stat`; None
    when no file is there."""
    path = cli_config_path(settings, home=home)
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino

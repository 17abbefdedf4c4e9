"""`--config FILE`: settings from a YAML mapping whose keys are the flags' names (`state-dir: /var/lib/cp`).

Where a setting comes from, first that has it: the flag, then its `CONSOLE_PROXY_<FLAG>` variable, then the file,
then the default. That is click's own order for a command's values (command line, environment, `default_map`,
default), and lets a container's environment override a file baked into its image (docs/flags.md).
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from console_proxy.cli.flags import OPTIONS
from console_proxy.core.errors import SettingsError
from console_proxy.hasura.optout import quote
from console_proxy.rules.located import Problems, YList, YMap, YScalar, YValue, parse

CONFIG_ENV = "CONSOLE_PROXY_CONFIG"


@dataclasses.dataclass(frozen=True)
class FileValue:
    """A setting's value as the file gives it, and where (`FILE:LINE:COL`), for the error sentence."""

    value: object
    where: str


def _key(field: str) -> str:
    return field.replace("_", "-")


def _plain(value: YValue) -> object:
    if isinstance(value, YScalar):
        return value.value
    if isinstance(value, YList):
        return tuple(_plain(item) for item in value.items)
    return None


def read_config_file(path: Path) -> dict[str, FileValue]:
    """The settings in `path`, by Settings field. SettingsError, one sentence with `FILE:LINE:COL`, for a file that
    cannot be read, is not a YAML mapping, or holds a key that names no flag (with the closest one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise SettingsError(f"--config {quote(str(path))} cannot be read ({reason}); expected a YAML file.") from None
    problems = Problems()
    document = parse(text, problems)
    if problems:
        raise SettingsError(problems.lines(str(path))[0] + ".")
    if document is None:
        return {}
    if not isinstance(document, YMap):
        where = f"{path}:{document.mark.line}:{document.mark.col}"
        raise SettingsError(f"{where}: the config file is not a mapping; expected keys named like the flags.")
    fields = {_key(option.field): option for option in OPTIONS}
    values: dict[str, FileValue] = {}
    for key, value in document.items:
        where = f"{path}:{key.mark.line}:{key.mark.col}"
        name = str(key.value)
        option = fields.get(name)
        if option is None:
            close = difflib.get_close_matches(name.replace("_", "-").removeprefix("--"), sorted(fields), n=1)
            hint = f"did you mean {quote(close[0])}?" if close else 'expected a flag\'s name without "--".'
            raise SettingsError(f"{where}: {quote(name)} is not a console-proxy setting; {hint}")
        if isinstance(value, YMap):
            raise SettingsError(f"{where}: {name} is a mapping; expected a value, or a list for a repeatable flag.")
        plain = _plain(value)
        if isinstance(plain, tuple) and not option.multiple:
            raise SettingsError(f"{where}: {name} is a list; expected one value.")
        if plain is not None:
            values[option.field] = FileValue(plain, f"{where}: {name}")
    return values

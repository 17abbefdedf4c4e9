"""What `console-proxy hasura` records of one CLI command: its path and the names of the flags set, never a value or
an argument (pure). The form is the CLI's own `command` field ("hasura migrate apply --admin-secret --endpoint"),
so the gate's CLI source reads it as it reads the CLI's."""

from __future__ import annotations

import platform
import re
from collections.abc import Container, Sequence

_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_VERSION = re.compile(r"\bv?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?\b")
_SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")
# Python's names of the machine -> Go's GOARCH, which the CLI reports.
_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armv6l": "arm",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips": "mips",
    "mips64": "mips64",
    "loongarch64": "loong64",
}


def describe(args: Sequence[str], commands: Container[str]) -> str:
    """The command path (the longest one `commands` knows, read from the words that are not flags) and `--name` for
    each flag set, sorted, as the CLI reports it. Values, positional arguments and everything after `--` are left
    out, and so are short flags: their letters name nothing without the CLI's own table. A word right after a flag
    that extends a known path is taken as part of it (a boolean flag takes no value), any other word there as the
    flag's value."""
    path = ["hasura"]
    flags: set[str] = set()
    after_flag = False
    arguments_began = False
    for word in args:
        if word == "--":
            break
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            if _FLAG_NAME.fullmatch(name):
                flags.add(name)
            after_flag = "=" not in word
            continue
        if word.startswith("-") and len(word) > 1:
            after_flag = len(word) == 2
            continue
        candidate = " ".join([*path, word])
        if not arguments_began and candidate in commands:
            path.append(word)
        elif not after_flag:
            arguments_began = True
        after_flag = False
    return " ".join([*path, *(f"--{name}" for name in sorted(flags))])


def version_in(output: str) -> str | None:
    """The CLI's version in what `hasura version` printed (`INFO hasura cli  version=v2.36.0`), if any."""
    found = re.search(r"version=(\S+)", output) or _VERSION.search(output)
    if found is None:
        return None
    return found.group(1) if found.re.groups else found.group(0)


def topic_of(version: str | None) -> str:
    """`cli`, or `cli_test` for a CLI whose version is not semver (a development build), as the CLI decides."""
    return "cli_test" if version is not None and not _SEMVER.fullmatch(version) else "cli"


def go_os() -> str:
    """This machine's OS as Go's GOOS names it."""
    return platform.system().lower() or "unknown"


def go_arch() -> str:
    """This machine's architecture as Go's GOARCH names it."""
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine or "unknown")

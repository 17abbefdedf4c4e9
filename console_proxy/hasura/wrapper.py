"""`console-proxy hasura -- ARGS...`: the real Hasura CLI run with its own telemetry off, and the command recorded
through the gate afterwards, in the background (docs/design.md, "The CLI's commands").

The CLI inherits stdin, stdout and stderr as they are (a terminal stays a terminal) and runs in the wrapper's
process group, so the terminal's own signals (^C, ^\\, a window resize) reach it directly; a signal another process
sends to the wrapper (`kill`, a supervisor's SIGTERM) is passed on to it. Its exit status is the wrapper's; killed by
a signal, the wrapper ends by the same signal. The record is made by a detached process once the CLI has exited:
the command takes no longer and exits the same whatever the gate does. POSIX only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
from collections.abc import Mapping, Sequence

from console_proxy.hasura import cli_command
from console_proxy.hasura.optout import HASURA_ENV

# Sent to the wrapper by another process: passed on to the CLI.
FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
CLI_PATH = "/_telemetry/v1/cli"
# The record's whole budget after the command: asking the CLI its version, then one post to the gate.
VERSION_TIMEOUT_S = 2.0
POST_TIMEOUT_S = 2.0


def cli_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the CLI's own telemetry off (the switch its telemetry FAQ documents for the CLI)."""
    return {**env, HASURA_ENV: "false"}


def run(executable: str, args: Sequence[str], env: Mapping[str, str]) -> int:
    """Run `executable` (as `hasura`) with `args` and `env`; its exit code, or minus the signal that ended it."""
    watched = {*FORWARDED, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        pid = os.posix_spawn(
            executable,
            ["hasura", *args],
            dict(env),
            setsigmask=previous,
            # What Python changed at start-up (SIGPIPE ignored) must not reach the CLI, as subprocess does.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
        while True:
            info = signal.sigwaitinfo(watched)
            if info.si_signo == signal.SIGCHLD:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return os.waitstatus_to_exitcode(status)
                continue
            # si_code <= 0: sent by a process (kill, sigqueue); the terminal's and the kernel's reached the CLI too.
            if info.si_code <= 0 and info.si_pid != pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, info.si_signo)
    finally:
        while signal.sigtimedwait(watched, 0) is not None:
            pass  # what arrived after the CLI ended is not the wrapper's to act on
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def exit_like(code: int) -> int:
    """End this process the way the CLI ended: by the same signal (returns only if that did not end it), or with
    its exit code, which is returned."""
    if code >= 0:
        return code
    sig = -code
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    return 128 + sig


def record_in_background(gate: str, executable: str, args: Sequence[str], code: int) -> None:
    """Record the command through the gate from a detached process, and return at once."""
    try:
        pid = os.fork()
    except OSError:
        return  # no record rather than a delay
    if pid:
        return
    try:  # the child: detached, holding none of the parent's files or pipes
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 1024)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        record(gate, executable, args, code)
    finally:
        os._exit(0)


def record(gate: str, executable: str, args: Sequence[str], code: int) -> None:
    """Post the command's event to the gate's CLI endpoint; every failure is silent."""
    # Imported here, in the detached process: the wrapper itself starts before every CLI command.
    import httpx

    from console_proxy.rules.route_rules import load_rules

    with contextlib.suppress(Exception):
        version = cli_version(executable)
        event = {
            "topic": cli_command.topic_of(version),
            "command": cli_command.describe(args, load_rules().cli.commands),
            "is_error": code != 0,
            "os_platform": cli_command.go_os(),
            "os_arch": cli_command.go_arch(),
            "version": version,
        }
        httpx.post(
            gate.rstrip("/") + CLI_PATH,
            content=json.dumps(event).encode(),
            headers={"content-type": "application/json"},
            timeout=POST_TIMEOUT_S,
            trust_env=False,
            verify=ssl.create_default_context(),
        )


def cli_version(executable: str) -> str | None:
    """The CLI's version as `hasura version` says it, asked outside any project (so it contacts no server)."""
    try:
        done = subprocess.run(
            [executable, "version", "--skip-update-check"],
            env=cli_environment(os.environ),
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cli_command.version_in(done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace"))

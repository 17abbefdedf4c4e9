"""A stand-in for the Hasura CLI binary (no working CLI can be installed here), written out as an executable script
by `install(directory)`. Standard library only.

It refuses to run with its own telemetry on (HASURA_GRAPHQL_ENABLE_TELEMETRY must be "false", as `console-proxy
hasura` sets it), logs each run (its arguments, working directory and that variable) to $STANDIN_LOG, and then:

- `version`: prints the line `hasura version` prints;
- `hold`: prints "ready" and waits for a signal, which ends it (the default action);
- `trap`: prints "ready", and on SIGTERM or SIGINT prints "got N" and exits 7;
- anything else: copies stdin to stdout after "stdin:", prints its arguments to stderr, exits $STANDIN_EXIT (3).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

TELEMETRY_OFF_EXIT = 99
VERSION = "v2.36.0"


def main() -> None:
    args = sys.argv[1:]
    log = os.environ.get("STANDIN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            entry = {"args": args, "cwd": os.getcwd(), "telemetry": os.environ.get("HASURA_GRAPHQL_ENABLE_TELEMETRY")}
            out.write(json.dumps(entry) + "\n")
    if os.environ.get("HASURA_GRAPHQL_ENABLE_TELEMETRY") != "false":
        print("stand-in hasura: my telemetry is on", file=sys.stderr)
        sys.exit(TELEMETRY_OFF_EXIT)
    if args[:1] == ["version"]:
        print(f"INFO hasura cli                                   version={VERSION}")
        return
    if args[:1] in (["hold"], ["trap"]):
        if args[0] == "trap":

            def caught(signum: int, frame: object) -> None:
                print(f"got {signum}", flush=True)
                sys.exit(7)

            signal.signal(signal.SIGTERM, caught)
            signal.signal(signal.SIGINT, caught)
        print("ready", flush=True)
        while True:
            signal.pause()
    sys.stdout.write("stdin:" + sys.stdin.read())
    print("args: " + " ".join(args), file=sys.stderr)
    sys.exit(int(os.environ.get("STANDIN_EXIT", "3")))


def install(directory: Path, python: str = sys.executable) -> Path:
    """Write this stand-in as the executable `directory/hasura`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hasura"
    path.write_text(f"#!{python}\n" + Path(__file__).read_text(encoding="utf-8"), encoding="utf-8")
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    main()

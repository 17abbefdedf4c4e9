"""`console-proxy rules test --actions`, `rules check` on allow entries, and `rules suggest`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from console_proxy.cli.main import main

OWN = """\
version: 1
prefixes: [/console]
routes: [/, /settings]
actions:
  drop: [RNS_SHOW_NOTIFICATION]
  allow:
    - Data/SET_TABLE
    - "@@router/LOCATION_CHANGE"
"""


def _own(tmp_path: Path, text: str = OWN) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_rules_test_actions_prints_what_leaves_of_each_name(tmp_path: Path) -> None:
    names = ["Data/SET_TABLE", "Data/SET_ALICE_AT_CORP_COM", "RNS_SHOW_NOTIFICATION", "bob@example.com", ""]
    result = CliRunner().invoke(
        main, ["rules", "test", "--actions", "--rules", _own(tmp_path)], input="\n".join(names) + "\n"
    )
    assert (result.exit_code, result.stdout.splitlines()) == (
        0,
        ["Data/SET_TABLE", "UNKNOWN", "(dropped)", "UNKNOWN", "UNKNOWN"],
    )


def test_rules_test_actions_takes_arguments_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["rules", "test", "--actions", "--rules", _own(tmp_path), "@@router/LOCATION_CHANGE", "Users/Alice"]
    )
    assert (result.exit_code, result.stdout) == (0, "@@router/LOCATION_CHANGE\nUNKNOWN\n")


def test_rules_test_actions_in_a_real_pipe_with_the_shipped_rules() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console_proxy", "rules", "test", "--actions"],
        input="Data/SET_TABLE\nData/SET_ALICE_AT_CORP_COM\nRNS_SHOW_NOTIFICATION\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.split()) == (0, ["Data/SET_TABLE", "UNKNOWN", "(dropped)"])


def test_rules_check_refuses_an_allow_entry_not_shaped_like_a_constant(tmp_path: Path) -> None:
    path = _own(tmp_path, OWN + "    - alice@corp.com\n")
    result = CliRunner().invoke(main, ["rules", "check", path])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:9:7: 'allow' entry 'alice@corp.com' is not shaped like an action constant")


def test_rules_check_says_what_a_file_without_allow_does(tmp_path: Path) -> None:
    path = _own(tmp_path, "version: 1\nroutes: [/]\n")
    result = CliRunner().invoke(main, ["rules", "check", path])
    assert result.exit_code == 0
    assert "no allow list: every action name leaves as UNKNOWN" in result.stdout


def _unknowns(tmp_path: Path, routes: list[str], actions: list[str]) -> Path:
    path = tmp_path / "unknowns.jsonl"
    lines = [json.dumps({"route": r}) for r in routes] + [json.dumps({"action": a}) for a in actions]
    path.write_text("\n".join(lines) + "\nnot json\n", encoding="utf-8")
    return path


def test_rules_suggest_prints_yaml_that_pastes_into_the_rules(tmp_path: Path) -> None:
    routes = [f"/console/reports/{n}/view" for n in range(5)] + ["/console/reports/archive"]
    actions = ["Reports/OPEN_REPORT", "bob@example.com", "Data/SET_TABLE"]
    file = _unknowns(tmp_path, routes, actions)
    result = CliRunner().invoke(main, ["rules", "suggest", "--file", str(file), "--rules", _own(tmp_path)])
    assert result.exit_code == 0, result.output
    proposed = yaml_load(result.stdout)
    # Six distinct values after /reports: all of them a parameter, the word archive too.
    assert proposed["routes"] == ["/reports/{REPORT}/view", "/reports/{REPORT}"]
    assert proposed["actions"]["allow"] == ["Reports/OPEN_REPORT"]
    # Pasted into the file, the proposals are good rules and the routes are known.
    pasted = "".join(f"  - {template}\n" for template in proposed["routes"])
    merged = OWN.replace("routes: [/, /settings]\n", "routes:\n  - /\n" + pasted) + "    - Reports/OPEN_REPORT\n"
    check = CliRunner().invoke(main, ["rules", "test", "--rules", _own(tmp_path, merged), routes[0]])
    assert (check.exit_code, check.stdout) == (0, "/reports/REPORT/view\n")


def test_rules_suggest_without_a_file_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "suggest", "--file", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1
    assert "run serve --learn-unknown true first" in result.stderr


def yaml_load(text: str) -> dict[str, Any]:
    import yaml

    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded

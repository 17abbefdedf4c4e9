"""Console sessions over one WebSocket of `console-proxy serve`, in each era's message form.

Every message is answered (an ack or an error), so the counts below are exact: sent, kept (in the local
event file, by topic) and dropped (left out by the rules, or refused as a whole and answered with an error).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client
import yaml

from console_proxy.resources import default_rules_path

from support.console_messages import CANARY, explicit, redux
from support.paths import ROUTES_CORPUS
from support.servers import serving

CORPUS = yaml.safe_load(ROUTES_CORPUS.read_text(encoding="utf-8"))
OVERSIZED = json.dumps({"topic": "console", "data": {"event_type": "Data/X", "url": "/data", "pad": "x" * 70_000}})
MALFORMED = '{"topic": "console", "data": {"event_type": "Data/X", "url": '


def kept_events(state: Path) -> list[tuple[str, dict[str, Any]]]:
    path = state / "events.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [(batch["topic"], event) for batch in map(json.loads, lines) for event in batch["data"]]


def exchange(url: str, messages: list[str | bytes]) -> list[dict[str, Any]]:
    """Send every message on one connection; the answer to each, in order."""
    answers = []
    with websockets.sync.client.connect(url, max_size=None) as ws:
        for message in messages:
            ws.send(message)
            answers.append(json.loads(ws.recv(timeout=10)))
    return answers


def test_bad_messages_between_good_ones_cost_nothing_on_one_connection(tmp_path: Path) -> None:
    state = tmp_path / "state"
    goods = [redux("console", "@@router/LOCATION_CHANGE", f"/console/data/db{n}/schema/public") for n in range(4)]
    good = [json.dumps(message) for message in goods]
    messages: list[str | bytes] = [good[0], OVERSIZED, good[1], MALFORMED, good[2], b"\x00binary", good[3]]
    with serving(tmp_path, "--state-dir", str(state)) as served:
        answers = exchange(served.base.replace("http://", "ws://") + "/_telemetry/v1/ws", messages)
        metrics = served_metrics(served.base)
        assert served.stop() == 0
    ok = {"accepted": 1, "dropped": 0}
    assert answers == [
        ok,
        {"error": "body too large"},
        ok,
        {"error": "invalid JSON"},
        ok,
        {"error": "binary message"},
        ok,
    ]
    assert [(topic, event["url"]) for topic, event in kept_events(state)] == [
        ("console", "/data/SOURCE/schema/SCHEMA")
    ] * 4
    for reason in ("body_too_large", "invalid_json", "binary_message"):
        assert f'console_proxy_batches_rejected_total{{reason="{reason}",source="console"}} 1.0' in metrics


def served_metrics(base: str) -> str:
    return httpx.get(base + "/metrics").text


def _pages(*eras: str) -> list[str]:
    return [entry["url"] for entry in CORPUS if entry["era"] in eras]


def _session(form: str) -> tuple[list[str], Counter[str], int]:
    """A console session in one message form: the messages, what is kept by topic, and how many are dropped."""
    messages: list[dict[str, Any]] = []
    kept: Counter[str] = Counter()
    dropped = 0
    if form in ("v1.x", "v2.x", "v2.x development build"):
        topic = "console_test" if form == "v2.x development build" else "console"
        pages = _pages("v1.x") if form == "v1.x" else _pages("v2.0", "v2.x", "v2.x sanitised", "ee")
        for page in pages:
            # A page view, an action on it, and a notification the console's own drop list leaves out.
            messages.append(redux(topic, "@@router/LOCATION_CHANGE", page))
            messages.append(redux(topic, "Data/SET_TABLE", page))
            messages.append(redux(topic, "RNS_SHOW_NOTIFICATION", page))
            kept[topic] += 2
            dropped += 1
        messages.append(redux(topic, "Main/RUN_TIME_ERROR", "", data={"message": CANARY, "stack": CANARY}))
        # a name on no allow entry: kept, as the unknown token
        messages.append(redux(topic, f"Data/SET_TABLE {CANARY}", ""))
        kept[topic] += 2
    else:
        topic = "console-test-v2" if form == "newest development build" else "console-v2"
        kept_as = "console_test" if topic == "console-test-v2" else "console"
        for page in _pages("newest"):
            messages.append(explicit(topic, "CLICK_EVENT", page, {"id": CANARY}))
            messages.append(explicit(topic, "INPUT_CHANGE_EVENT", page, {"id": CANARY}, console_type="pro"))
            kept[kept_as] += 2
        messages.append(
            explicit(topic, "CONNECT_DB", "/data/manage/connect", {"db_kind": "postgres", "entity_hash": CANARY})
        )
        messages.append(
            explicit(topic, "SET_FEATURE_FLAG", "/settings/feature-flags", {"feature_flag": CANARY, "value": True})
        )
        messages.append(explicit(topic, "RUN_TIME_ERROR", "", {"message": CANARY, "stack": CANARY}))
        messages.append(explicit(topic, CANARY, "", {"id": CANARY}))
        kept[kept_as] += 4
    return [json.dumps(message) for message in messages], kept, dropped


FORMS = ["v1.x", "v2.x", "v2.x development build", "newest", "newest development build"]


@pytest.mark.parametrize("form", FORMS)
def test_a_console_session_in_each_message_form(tmp_path: Path, form: str) -> None:
    messages, kept, dropped = _session(form)
    # An oversized and a malformed message in the middle of the session: dropped, the rest still kept.
    middle = len(messages) // 2
    sent: list[str | bytes] = [*messages[:middle], OVERSIZED, MALFORMED, *messages[middle:]]
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state)) as served:
        answers = exchange(served.base.replace("http://", "ws://") + "/_telemetry/v1/ws", sent)
        assert served.stop() == 0
    events = kept_events(state)
    assert Counter(topic for topic, _ in events) == kept
    assert sum(answer.get("accepted", 0) for answer in answers) == len(events)
    refused = sum(1 for answer in answers if "error" in answer)
    left_out = sum(answer.get("dropped", 0) for answer in answers)
    assert (refused, left_out) == (2, dropped)
    assert all(CANARY not in json.dumps(event) for _, event in events)
    assert all(event["url"] != "/UNKNOWN" for _, event in events)
    # Every real action name of the session leaves as it is; the one made of the canary as the token.
    real = [json.loads(m)["data"]["event_type"] for m in messages if CANARY not in json.loads(m)["data"]["event_type"]]
    verbatim = [e["event_type"] for _, e in events if e["event_type"] != "UNKNOWN"]
    tokens = sum(1 for _, e in events if e["event_type"] == "UNKNOWN")
    assert sorted(verbatim) == sorted(n for n in real if n != "RNS_SHOW_NOTIFICATION")
    assert tokens == 1
    print(
        f"\n{form}: sent {len(sent)}, kept {len(events)} {dict(kept)}: {len(verbatim)} names verbatim"
        f" ({len(set(verbatim))} distinct), {tokens} as UNKNOWN; dropped {refused + left_out}"
        f" ({left_out} by the drop list, {refused} messages refused)"
    )


def test_every_name_of_the_shipped_allow_list_leaves_as_it_is_over_the_websocket(tmp_path: Path) -> None:
    rules = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))["actions"]
    names = [n for n in rules["allow"] if "*" not in n and "?" not in n and n not in rules["drop"]]
    messages: list[str | bytes] = [json.dumps(redux("console", name, "/settings/about")) for name in names]
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state)) as served:
        exchange(served.base.replace("http://", "ws://") + "/_telemetry/v1/ws", messages)
        assert served.stop() == 0
    assert [event["event_type"] for _, event in kept_events(state)] == names
    print(f"\nshipped allow list over the WebSocket: {len(names)} names sent, {len(names)} kept verbatim")

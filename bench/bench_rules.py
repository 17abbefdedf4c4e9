"""Route anonymizer benchmark: console-proxy's rules against two peers on the same distinct URLs.

Run from the project root:  .venv/bin/python bench/bench_rules.py [--urls 20000] [--repeat 5] [--batch 1000]

Contestants, all on the same URL list (no two alike, so no cache helps):
  ours-default    load_rules() with the shipped route_rules.yaml
  ours-10k        the same rules plus 10,000 generated templates, many hanging off the busiest nodes
  regex-list      a list of regular-expression substitutions per console section, like the Hasura console's
  relay           Sentry Relay's PII scrubber (sentry_relay.processing.pii_strip_event) with the same
                  substitutions as pattern rules, many URLs per event (batched)
Prints per-route times (best of --repeat), the ratios against the goals, and how many outputs still hold
one of the identifiers that went in ("leaks"), which only the template engine is built to keep at zero.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote, unquote

import yaml

from console_proxy import RouteRules, load_rules
from console_proxy.resources import default_rules_path

SEED = 20261127
WORDS = [
    "users",
    "orders",
    "order_items",
    "accounts",
    "public",
    "analytics",
    "billing",
    "auth",
    "inventory",
    "events",
    "customer",
    "invoice",
    "payments",
    "audit_log",
    "sessions",
    "products",
    "reviews",
    "tenant",
]
ODD = [
    "Bücher",
    "日本語テーブル",
    "my table",
    "a/b",
    "what?",
    "tag#1",
    "100%",
    "naïve café",
    "tables",
    "schema",
    "manage",
    "add",
    "console",
    "Ünïcödé-名前",
    "x.y-z",
]
_VAR = re.compile(r"\{\s*([A-Z][A-Z0-9_]*)\s*(?::\s*([^}]*))?\}")

# (context before, identifier, placeholder): one rule each, as the console did section by section.
SECTION_RULES: list[tuple[str, str, str]] = [
    (r"^(?:[a-z]+://[^/]+)?", "/console", ""),
    (r"^/data/manage/edit/", r"[^/?#]+", "SOURCE"),
    (r"^/data/native-queries/native-query/", r"[^/?#]+", "SOURCE"),
    (r"^/data/native-queries/native-query/[^/]+/", r"[^/?#]+", "NATIVE_QUERY"),
    (r"^/data/native-queries/logical-models/", r"[^/?#]+", "SOURCE"),
    (r"^/data/native-queries/logical-models/[^/]+/", r"[^/?#]+", "LOGICAL_MODEL"),
    (r"^/data/", r"[^/?#]+", "SOURCE"),
    (r"^/data/[^/]+/schema/", r"[^/?#]+", "SCHEMA"),
    (r"/tables/", r"[^/?#]+", "TABLE"),
    (r"/views/", r"[^/?#]+", "VIEW"),
    (r"/functions/", r"[^/?#]+", "FUNCTION"),
    (r"^/remote-schemas/manage/", r"[^/?#]+", "REMOTE_SCHEMA"),
    (r"^/actions/manage/", r"[^/?#]+", "ACTION"),
    (r"^/events/data/", r"[^/?#]+", "EVENT_TRIGGER"),
    (r"^/events/cron/", r"[^/?#]+", "CRON_TRIGGER"),
    (r"^/events/manage/triggers/", r"[^/?#]+", "EVENT_TRIGGER"),
    (r"^/api/rest/(?:details|edit)/", r"[^/?#]+", "REST_ENDPOINT"),
    (r"^/api/allow-list/detail/", r"[^/?#]+", "QUERY_COLLECTION"),
    (r"^/(?:api|settings)/schema-registry/", r"[^/?#]+", "ID"),
]
FULL_URL = r"^[a-z]+://[^/]+"
QUERY_AND_FRAGMENT = r"[?#].*$"
# Relay matches every rule against the original string (no chaining), so anchored rules allow what comes first.
ANCHOR = r"^(?:[a-z]+://[^/]+)?(?:/console)?"


def _anchored(before: str) -> str:
    return ANCHOR + before[1:] if before.startswith("^") and before != "^" else before


def default_templates() -> list[str]:
    doc = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
    return [r if isinstance(r, str) else r["path"] for r in doc["routes"]]


def make_urls(count: int, rng: random.Random) -> tuple[list[str], list[list[str]]]:
    """`count` distinct URLs shaped like a console session, and the identifiers that went into each."""
    templates = default_templates()
    # Data pages dominate a real session; weight them so.
    weights = [6 if "{TABLE}" in t or "{VIEW}" in t else 3 if "{" in t else 1 for t in templates]
    urls: list[str] = []
    idents: list[list[str]] = []
    seen: set[str] = set()
    while len(urls) < count:
        used: list[str] = []
        if rng.random() < 0.04:
            path = "/" + "/".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(rng.randint(1, 5)))
        else:
            template = rng.choices(templates, weights)[0]
            segs = []
            for seg in template.strip("/").split("/") if template != "/" else []:
                match = _VAR.fullmatch(seg)
                if match is None:
                    segs.append(seg)
                    continue
                if match.group(2):
                    segs.append(rng.choice(match.group(2).split("|")).strip())
                    continue
                name = rng.choice(ODD) if rng.random() < 0.1 else f"{rng.choice(WORDS)}_{rng.randrange(10_000)}"
                used.append(name)
                segs.append(quote(name, safe="") if rng.random() < 0.9 else name.replace("/", "%2F"))
            path = "/" + "/".join(segs)
        url = ("/console" if rng.random() < 0.9 else "") + path
        if rng.random() < 0.05:
            url = "http://localhost:9695" + url
        if path.endswith("/browse") and rng.random() < 0.5:
            value = f"{rng.choice(WORDS)}{rng.randrange(10**6)}@example.com"
            used.append(value)
            url += "?filter=email%3B%24eq%3B" + quote(value, safe="") + "&sort=id%3Basc"
        elif "/v2/" in path:
            db = f"db_{rng.randrange(10**6)}"
            used.append(db)
            url += f"?database={db}&driver=postgres&table=%5B%22public%22%2C%22t{rng.randrange(10**5)}%22%5D"
        if url not in seen:
            seen.add(url)
            urls.append(url)
            idents.append(used)
    return urls, idents


def extra_templates(count: int) -> list[str]:
    """Generated templates: 60% widen the nodes real routes pass through, 40% are new sections."""
    base = [t for t in default_templates() if ": " not in t and t != "/"]
    out = []
    for i in range(count):
        if i % 5 < 3:
            out.append(f"{base[i % len(base)]}/ext-{i}" + ("/{ITEM}" if i % 2 else ""))
        else:
            out.append(f"/section-{i}/{{ITEM}}/page-{i % 7}" if i % 3 else f"/section-{i}/manage/{{ITEM}}")
    return out


def rules_with_extra(count: int, directory: Path) -> RouteRules:
    text = default_rules_path().read_text(encoding="utf-8")
    lines = "".join(f"  - '{t}'\n" for t in extra_templates(count))
    path = directory / "route_rules_10k.yaml"
    path.write_text(text.rstrip("\n") + "\n\n  # generated for the benchmark\n" + lines, encoding="utf-8")
    return load_rules(path)


def regex_list() -> Callable[[str], str]:
    subs = [(re.compile(FULL_URL), ""), (re.compile(QUERY_AND_FRAGMENT), "")]
    subs += [(re.compile(f"({_anchored(before)})({ident})"), rf"\g<1>{text}") for before, ident, text in SECTION_RULES]

    def anonymize(url: str) -> str:
        for pattern, repl in subs:
            url = pattern.sub(repl, url)
        return url

    return anonymize


def relay_config() -> dict[str, object]:
    # Relay runs the rules in the order of their names, and an anchored rule no longer matches once the
    # start of the string was redacted: so the identifier rules (anchored to allow a host and a prefix)
    # come first, right-most identifiers first, and the prefix, query and host rules last.
    rules: dict[str, object] = {}
    for n, (before, ident, text) in enumerate(reversed(SECTION_RULES)):
        rules[f"r{n:02d}"] = {
            "type": "pattern",
            "pattern": f"{_anchored(before)}({ident})",
            "replaceGroups": [1],
            "redaction": {"method": "replace", "text": text},
        }
    remove = {"method": "replace", "text": ""}
    rules["x1_query"] = {"type": "pattern", "pattern": QUERY_AND_FRAGMENT, "redaction": remove}
    rules["x2_full_url"] = {"type": "pattern", "pattern": FULL_URL, "redaction": remove}
    return {"rules": rules, "applications": {"extra.*": list(rules)}}


def relay_batches(urls: Sequence[str], batch: int) -> Callable[[], list[str]]:
    from sentry_relay.processing import pii_strip_event, validate_pii_config

    config = relay_config()
    validate_pii_config(json.dumps(config))
    chunks = [list(urls[i : i + batch]) for i in range(0, len(urls), batch)]

    def run() -> list[str]:
        out: list[str] = []
        for chunk in chunks:
            event = {"extra": {str(i): url for i, url in enumerate(chunk)}}
            scrubbed = pii_strip_event(config, event)["extra"]
            out.extend(scrubbed[str(i)] for i in range(len(chunk)))
        return out

    return run


def best_of(repeat: int, run: Callable[[], list[str]]) -> tuple[float, list[str]]:
    times = []
    result: list[str] = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def leaks(outputs: Sequence[str], idents: Sequence[list[str]], keywords: set[str]) -> int:
    count = 0
    for out, used in zip(outputs, idents, strict=True):
        segments = {unquote(s) for s in re.split(r"[/?&=#]", out)}
        if any(name in segments for name in used if name not in keywords):
            count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--extra", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    urls, idents = make_urls(args.urls, random.Random(SEED))
    assert len(set(urls)) == len(urls)
    keywords = {s for t in default_templates() for s in t.split("/")}
    default = load_rules()
    peer = regex_list()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        big = rules_with_extra(args.extra, Path(tmp))
        compile_s = time.perf_counter() - start
    contestants: list[tuple[str, Callable[[], list[str]]]] = [
        ("ours-default", lambda: [default.anonymize(u) for u in urls]),
        (f"ours-{args.extra // 1000}k", lambda: [big.anonymize(u) for u in urls]),
        ("regex-list", lambda: [peer(u) for u in urls]),
        ("relay", relay_batches(urls, args.batch)),
    ]
    print(
        f"{len(urls)} distinct URLs (seed {SEED}), best of {args.repeat}; {default.template_count} default templates,"
        f" {big.template_count} with the generated ones (loaded and compiled in {compile_s:.2f} s);"
        f" relay batches of {args.batch}; python {sys.version.split()[0]}"
    )
    print(f"{'contestant':<14} {'us/route':>9} {'routes/s':>11} {'unknown':>8} {'leaks':>7}")
    per_route: dict[str, float] = {}
    for name, run in contestants:
        seconds, outputs = best_of(args.repeat, run)
        per_route[name] = seconds / len(urls) * 1e6
        unknown = sum(1 for o in outputs if o == "/UNKNOWN")
        print(
            f"{name:<14} {per_route[name]:>9.2f} {len(urls) / seconds:>11,.0f} {unknown:>8} "
            f"{leaks(outputs, idents, keywords):>7}"
        )
    ours, big_name = per_route["ours-default"], f"ours-{args.extra // 1000}k"
    relay_ratio = per_route["relay"] / ours
    big_ratio = per_route[big_name] / ours
    print(f"relay / ours-default      = {relay_ratio:5.2f}x  (goal >= 3x: {'met' if relay_ratio >= 3 else 'NOT met'})")
    print(f"{big_name} / ours-default = {big_ratio:5.2f}x  (goal <= 1.5x: {'met' if big_ratio <= 1.5 else 'NOT met'})")
    print(f"regex-list / ours-default = {per_route['regex-list'] / ours:5.2f}x")
    print(f"median URL length: {statistics.median(len(u) for u in urls)} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())

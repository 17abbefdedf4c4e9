"""The dashboard's threshold: no figure of fewer than min_installations installations, and a count of each
chart's withheld rows."""

from __future__ import annotations

from datetime import date

from console_proxy.collector.dashboard import Aggregates, figures, flatten


def aggregates(**fields: object) -> Aggregates:
    base: dict[str, object] = {
        "installations": 0,
        "by_day": [],
        "pages": [],
        "actions": [],
        "server_versions": [],
        "cli_versions": [],
        "commands": [],
        "latest_metrics": [],
    }
    base.update(fields)
    return Aggregates(**base)  # type: ignore[arg-type]


def test_a_page_of_fewer_installations_is_left_out_and_counted() -> None:
    data = figures(
        aggregates(pages=[("/data", 100, 5), ("/settings", 900, 4), ("/api", 3, 7)]),
        min_installations=5,
        window_days=90,
    )
    assert data["top_pages"] == {
        "rows": [{"url": "/data", "events": 100, "installations": 5}, {"url": "/api", "events": 3, "installations": 7}],
        "withheld": 1,
    }


def test_the_total_of_installations_is_withheld_below_the_threshold() -> None:
    assert figures(aggregates(installations=4), min_installations=5, window_days=90)["installations"] is None
    assert figures(aggregates(installations=5), min_installations=5, window_days=90)["installations"] == 5


def test_each_day_of_each_topic_stands_on_its_own() -> None:
    d1, d2 = date(2026, 12, 1), date(2026, 12, 2)
    data = figures(
        aggregates(
            by_day=[(d1, "console", 50, 6), (d1, "cli", 9, 2), (d2, "cli", 30, 5), (date(2026, 12, 3), "console", 1, 1)]
        ),
        min_installations=5,
        window_days=90,
    )
    assert data["events_by_day"] == {
        "days": ["2026-12-01", "2026-12-02"],
        "series": [{"topic": "cli", "events": [None, 30]}, {"topic": "console", "events": [50, None]}],
        "withheld": 2,
    }


def test_an_error_rate_of_too_few_erring_installations_is_withheld() -> None:
    data = figures(
        aggregates(
            commands=[
                ("hasura migrate apply", 200, 9, 10, 2),
                ("hasura version", 100, 6, 0, 0),
                ("hasura deploy", 50, 5, 25, 5),
                ("hasura seed apply", 10, 1, 10, 1),
            ]
        ),
        min_installations=5,
        window_days=90,
    )
    assert data["cli_commands"] == {
        "rows": [
            {"command": "hasura migrate apply", "events": 200, "installations": 9, "error_rate": None},
            {"command": "hasura version", "events": 100, "installations": 6, "error_rate": 0.0},
            {"command": "hasura deploy", "events": 50, "installations": 5, "error_rate": 0.5},
        ],
        "withheld": 1,
        "rates_withheld": 1,
    }


def test_server_counts_are_bucketed_per_installation_and_small_buckets_withheld() -> None:
    latest = [(f"s{i}", {"tables": 12, "relationships": {"manual": 0}}) for i in range(5)]
    latest.append(("odd", {"tables": 50000, "relationships": {"manual": 0}}))
    data = figures(aggregates(latest_metrics=latest), min_installations=5, window_days=90)
    assert data["server_counts"]["metrics"] == [
        {"name": "relationships.manual", "buckets": [{"bucket": "0", "installations": 6}]},
        {"name": "tables", "buckets": [{"bucket": "10-99", "installations": 5}]},
    ]
    assert data["server_counts"]["withheld"] == 1


def test_versions_name_the_unknown_and_withhold_the_rare() -> None:
    data = figures(
        aggregates(server_versions=[("v2.40.0", 8), (None, 5), ("v2.41.0-beta.1", 1)]),
        min_installations=5,
        window_days=30,
    )
    assert data["server_versions"] == {
        "rows": [{"version": "v2.40.0", "installations": 8}, {"version": "unknown", "installations": 5}],
        "withheld": 1,
    }
    assert data["window_days"] == 30


def test_flatten_keeps_counts_only() -> None:
    assert flatten({"tables": 3, "permissions": {"select": 2, "x": "y"}, "odd": [1]}) == {
        "tables": 3,
        "permissions.select": 2,
    }

"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from redis_server import RedisServer, running_redis

from console_proxy.rules.route_rules import RouteRules, load_rules

# In CI the property tests draw the same cases every run, so a red build is the code's doing, not the dice's;
# on a workstation they keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def default_rules() -> RouteRules:
    """The rules file that ships with console-proxy, loaded once."""
    return load_rules()


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[[str], Path]:
    """Write a rules file under tmp_path and return its path."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server (appendonly yes, appendfsync always) on a free loopback port, stopped afterwards."""
    with running_redis(tmp_path / "redis") as server:
        yield server

"""The receiving end, `console-proxy collect`: takes the gate's upstream batches and stores each event once.

Layers, bottom up: pure logic (`envelope`, `vocabulary`, `routes`, `intake`, `dashboard`, `tables`), the stores
(`store`, `duckdb_store`, `postgres_store`, `export`), and the ASGI glue (`app`, `ui`). Names borrowed from the
rest of the package come through `house`, so that a move there is a change of one file here.
"""

from __future__ import annotations

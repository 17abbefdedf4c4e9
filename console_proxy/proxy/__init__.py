"""Reverse-proxy mode (docs/design.md, "Reverse-proxy mode"): the gate in place of the Hasura server.

`app.HasuraProxy` relays what is not the gate's own to Hasura: `relay.py` HTTP, `websocket.py` the GraphQL
subscriptions. The pure parts: `headers.py` (what passes, what is dropped, what is added), `target.py` (where a
request goes), `rewrite.py` (the changes to console pages and scripts) and `page_script.py` (the script a page gets).
"""

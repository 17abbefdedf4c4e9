"""The script the gate puts first in a console page's `<head>` (docs/design.md, "Reverse-proxy mode").

It runs before the page's own inline script and before any bundle, whichever era the console is and wherever its
bundles come from (the server, the CDN), so no bundle has to change:

- `window.__env` becomes an accessor: when the page assigns it, its `enableTelemetry` is pinned to the gate's
  decision (and, unless `--gate-decides-console` is set, to what Hasura's page said too). The console opens its
  telemetry socket only when that reads true.
- `window.WebSocket` is wrapped for one URL only: the console's telemetry socket goes to the gate's
  `/_telemetry/v1/ws` instead; while telemetry is off the constructor throws (the console catches it and opens
  nothing, not even in a reconnect loop). Every other socket (GraphQL subscriptions) is the browser's own, untouched.

The telemetry URL is written split in two, so that the page's bytes never hold the literal the gate looks for.
"""

from __future__ import annotations

import json

from console_proxy.hasura.endpoints import CONSOLE_SOCKET_URL
from console_proxy.sources import WS_PATH

# The attribute that marks the script, so that a page gets it once.
MARKER = b"data-console-proxy"

_TEMPLATE = """(function () {
  var on = %(on)s, gateOnly = %(gate_only)s, literal = %(head)s + %(tail)s;
  var gate = %(gate)s || ((location.protocol === "https:" ? "wss://" : "ws://") + location.host + %(path)s);
  var said, env;
  function allowed() { return on && (gateOnly || said === true); }
  function pin(value) {
    if (value !== null && typeof value === "object") {
      said = value.enableTelemetry;
      try {
        Object.defineProperty(value, "enableTelemetry", {configurable: true, enumerable: true,
          get: allowed, set: function (v) { said = v; }});
      } catch (e) {}
    }
    return value;
  }
  try {
    Object.defineProperty(window, "__env", {configurable: true, enumerable: true,
      get: function () { return env; }, set: function (v) { env = pin(v); }});
  } catch (e) {}
  var Native = window.WebSocket;
  if (typeof Native !== "function") return;
  function Gated(url, protocols) {
    var target = String(url);
    if (target === literal || target === literal + "/" || target === gate) {
      if (!allowed()) throw new Error("console telemetry is off");
      url = gate;
    }
    return arguments.length > 1 ? new Native(url, protocols) : new Native(url);
  }
  Gated.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) { Gated[k] = Native[k]; });
  window.WebSocket = Gated;
})();"""


def page_script(*, on: bool, gate_only: bool, gate_url: str | None) -> bytes:
    """The `<script>` element for a page: `on` is the gate's decision, `gate_only` lets it alone decide, and
    `gate_url` is the gate's socket URL (None: the page's own origin, which is the gate's)."""
    split = CONSOLE_SOCKET_URL.index("://") + 3
    body = _TEMPLATE % {
        "on": json.dumps(on),
        "gate_only": json.dumps(gate_only),
        "head": json.dumps(CONSOLE_SOCKET_URL[:split]),
        "tail": json.dumps(CONSOLE_SOCKET_URL[split:]),
        "gate": json.dumps(gate_url),
        "path": json.dumps(WS_PATH),
    }
    # json.dumps escapes nothing HTML would read as the end of the element; "</" never occurs in the values.
    return b"<script " + MARKER + b">" + body.encode() + b"</script>"

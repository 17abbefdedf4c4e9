"""The Hasura console as the stand-in Hasura serves it, era by era: its page and its assets.

Written from the real shapes (read in hasura/graphql-engine; none of Hasura's code is copied):

- the page, server/src-rsr/console.html: `window.__env` set in an inline script first in `<head>` (consoleMode
  "server", urlPrefix, consolePath, isAdminSecretSet, enableTelemetry, assetsPath, assetsVersion, cdnAssets,
  serverVersion), then a script that derives `versionedAssetsPath` (the server's `/console/assets/versioned` when
  `cdnAssets` is false, else the CDN's `assetsPath/assetsVersion`) and loads the bundles from there;
- before 2.18 the bundles are `main.js.gz`, `vendor.js.gz`, `main.css.gz`; since 2.18 (frontend/tools/executors/
  build-server-assets/executor.ts) hashed, gzipped bundles loaded by `versioned/assetLoader.js.gz`, which defines
  `window.__loadConsoleAssetsFromBasePath(basePath)` (the page calling it once the loader is in is inferred from the
  executor's polyfill file, which calls it the same way);
- the telemetry client (lib/telemetry/client.ts, telemetry/index.ts before it): `new WebSocket(endpoints.
  telemetryServer)` with the literal `wss://telemetry.hasura.io/v1/ws`, only when `window.__env.enableTelemetry`,
  a new socket at once when one closes, messages sent only while the socket is open; each era's messages are those
  of support.console_messages;
- the API at the page's own origin (`/v1/graphql`), over HTTP and a graphql-transport-ws subscription.

The bundle records what it did in `window.__standin`, for the browser tests to read.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from support.console_messages import ERAS

ERA_NAMES = ("v1", "v2", "v2.18", "cdn")
ADMIN_SECRET = "standin-admin-secret"
CDN_HOST = "graphql-engine-cdn.hasura.io"
CDN_ASSETS = f"https://{CDN_HOST}/console/assets"
CDN_VERSION = "channel/stable/v2.40"
TELEMETRY_LITERAL = "wss://telemetry.hasura.io/v1/ws"
# The 2.18+ bundles' names, hashed as the build makes them.
HASHED_MAIN = "main.4f2a9c1e.js"
HASHED_VENDOR = "vendor.7b3e0d55.js"
HASHED_CSS = "main.c3a1f09b.css"


def era_messages(era: str) -> list[tuple[dict[str, Any], tuple[str, str, str, str | None] | None]]:
    """The messages a console of `era` sends, each with what the gate keeps of it (None: dropped)."""
    out = []
    for message, kept, _ in ERAS:
        data = message["data"]
        newest = "event_data" in data
        v1 = str(data.get("server_version", "")).startswith("v1")
        if (era == "v1" and v1) or (era == "v2" and not v1 and not newest) or (era in ("v2.18", "cdn") and newest):
            out.append((message, kept))
    return out


def _env(era: str, *, enable_telemetry: bool) -> str:
    cdn = era == "cdn"
    env = {
        "consoleMode": "server",
        "urlPrefix": "/console",
        "consolePath": "/console",
        "isAccessKeySet": True,
        "isAdminSecretSet": True,
        "enableTelemetry": enable_telemetry,
        "assetsPath": CDN_ASSETS,
        "assetsVersion": CDN_VERSION if cdn else "v2.40",
        "cdnAssets": cdn,
        "serverVersion": "v1.3.3" if era == "v1" else "v2.40.0",
    }
    return json.dumps(env, indent=1)


_PAGE = """<html lang="en-us">
  <head>
    <script>
     window.__env = %(env)s;
     window.__env.versionedAssetsPath = window.__env.assetsPath;
    </script>
  </head>
  <body>
    <div id="loading">Loading...</div>
    <div id="content" class="mainContent"></div>
    <script>
     const loadCSS = (url) => {
       const linkElem = document.createElement('link');
       linkElem.rel = 'stylesheet';
       linkElem.href = url;
       document.body.append(linkElem);
     };
     const loadScript = (url, onload) => {
       const scriptElem = document.createElement('script');
       scriptElem.charset = 'UTF-8';
       scriptElem.src = url;
       if (onload) scriptElem.onload = onload;
       document.body.append(scriptElem);
     };
     const prependSlash = (str) => str === '' ? '' : '/' + str;
     if (window.__env.cdnAssets === false) {
       window.__env.assetsPath = window.location.pathname.slice(
         0, window.location.pathname.lastIndexOf(window.__env.consolePath)) + '/console/assets';
       window.__env.versionedAssetsPath = window.__env.assetsPath + '/versioned';
     } else {
       window.__env.versionedAssetsPath = window.__env.assetsPath + prependSlash(window.__env.assetsVersion);
     }
     %(load)s
    </script>
  </body>
</html>
"""
_LOAD_LEGACY = """loadCSS(window.__env.assetsPath + '/common/css/font-awesome.min.css.gz');
     loadCSS(window.__env.versionedAssetsPath + '/main.css.gz');
     loadScript(window.__env.versionedAssetsPath + '/main.js.gz');
     loadScript(window.__env.versionedAssetsPath + '/vendor.js.gz');"""
_LOAD_HASHED = """loadScript(window.__env.versionedAssetsPath + '/assetLoader.js.gz',
       () => window.__loadConsoleAssetsFromBasePath(window.__env.versionedAssetsPath));"""


def page(era: str, *, enable_telemetry: bool = True) -> bytes:
    """The console page of `era` as the server renders it."""
    load = _LOAD_LEGACY if era in ("v1", "v2") else _LOAD_HASHED
    return (_PAGE % {"env": _env(era, enable_telemetry=enable_telemetry), "load": load}).encode()


_BUNDLE = """(function () {
  // Endpoints.ts: the telemetry socket is a literal that no setting changes.
  var endpoints = { telemetryServer: '%(literal)s' };
  var messages = %(messages)s;
  var SECRET = %(secret)s;
  var state = window.__standin = { era: %(era)s, opened: [], sent: 0, acks: [], closes: 0, refused: null,
    telemetryOn: !!window.__env.enableTelemetry, query: null, subscription: { protocol: null, ticks: [],
    closed: null } };
  function createClient() {
    if (window.__env.enableTelemetry) {
      try {
        var client = new WebSocket(endpoints.telemetryServer);
        client.onerror = function () {};
        state.opened.push(client.url);
        return client;
      } catch (e) {
        state.refused = String(e);
        return null;
      }
    }
    return null;
  }
  var sentAll = false;
  function wire(client) {
    client.onopen = function () {
      if (sentAll) return;
      sentAll = true;
      messages.forEach(function (m) {
        if (client.readyState === client.OPEN) { client.send(JSON.stringify(m)); state.sent += 1; }
      });
    };
    client.onmessage = function (e) { state.acks.push(e.data); };
    // The real client opens a new socket at once; a few times here, so a refusing gate cannot spin the test.
    client.onclose = function () {
      state.closes += 1;
      if (state.closes < 5) { var next = createClient(); if (next) wire(next); }
    };
  }
  var first = createClient();
  if (first) wire(first);

  var api = window.location.origin + '/v1/graphql';
  fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hasura-admin-secret': SECRET },
               body: JSON.stringify({ query: 'query { standin_now }' }) })
    .then(function (r) { return r.json(); })
    .then(function (j) { state.query = j; }, function (e) { state.query = { error: String(e) }; });
  var sub = new WebSocket(api.replace(/^http/, 'ws'), 'graphql-transport-ws');
  var subscribedAt = 0;
  sub.onopen = function () {
    state.subscription.protocol = sub.protocol;
    sub.send(JSON.stringify({ type: 'connection_init', payload: { headers: { 'x-hasura-admin-secret': SECRET } } }));
  };
  sub.onmessage = function (e) {
    var m = JSON.parse(e.data);
    if (m.type === 'connection_ack') {
      subscribedAt = performance.now();
      sub.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { standin_ticks }' } }));
    } else if (m.type === 'next') {
      if (!state.subscription.ticks.length) state.subscription.firstMs = performance.now() - subscribedAt;
      state.subscription.ticks.push(m.payload.data.standin_ticks);
    } else if (m.type === 'complete') {
      state.subscription.completeMs = performance.now() - subscribedAt;
      sub.close(1000, 'done');
    }
  };
  sub.onclose = function (e) { state.subscription.closed = e.code; };
})();
"""


def bundle(era: str) -> bytes:
    """The console bundle of `era` that holds the telemetry client and the API calls."""
    messages = [message for message, _ in era_messages(era)]
    return (
        _BUNDLE
        % {
            "literal": TELEMETRY_LITERAL,
            "messages": json.dumps(messages),
            "secret": json.dumps(ADMIN_SECRET),
            "era": json.dumps(era),
        }
    ).encode()


_ASSET_LOADER = """// THIS FILE IS GENERATED; DO NOT MODIFY BY HAND. (its shape: build-server-assets/executor.ts)
const loadCss = (url) => {
  const linkElem = document.createElement("link");
  linkElem.rel = "stylesheet";
  linkElem.href = url;
  document.body.append(linkElem);
};
const loadJs = (url, type) => {
  const scriptElem = document.createElement("script");
  scriptElem.charset = "UTF-8";
  scriptElem.src = url;
  if (type) {
    scriptElem.type = type;
  }
  document.body.append(scriptElem);
};
window.__loadConsoleAssetsFromBasePath = (root) => {
  const basePath = root.endsWith('/') ? root : root + '/';
  loadCss(basePath + "%(css)s.gz");
  loadJs(basePath + "%(vendor)s.gz");
  loadJs(basePath + "%(main)s.gz", "module");
};
"""
_VENDOR = b"window.__standinVendor = true; /* React, Redux and friends would be here */\n"
_CSS = b".mainContent { display: block; }\n"


def assets(era: str) -> dict[str, bytes]:
    """The files under `/console/assets/` (and the CDN's `assetsVersion` folder) of `era`, as served: `.gz` files
    gzipped. Keys are paths below the assets root: `versioned/main.js.gz`, `common/...`."""
    plain: dict[str, bytes] = {"common/css/font-awesome.min.css": b"/* icons */\n", "common/img/favicon_green.png": b""}
    if era in ("v1", "v2"):
        plain.update({"versioned/main.js": bundle(era), "versioned/vendor.js": _VENDOR, "versioned/main.css": _CSS})
    else:
        loader = _ASSET_LOADER % {"css": HASHED_CSS, "vendor": HASHED_VENDOR, "main": HASHED_MAIN}
        plain.update(
            {
                "versioned/assetLoader.js": loader.encode(),
                f"versioned/{HASHED_MAIN}": bundle(era),
                f"versioned/{HASHED_VENDOR}": _VENDOR,
                f"versioned/{HASHED_CSS}": _CSS,
            }
        )
    served: dict[str, bytes] = {}
    for name, data in plain.items():
        if name.endswith(".png"):
            served[name] = data
        else:
            served[name + ".gz"] = gzip.compress(data, mtime=0)
    return served


def script_paths(era: str) -> list[str]:
    """The JavaScript files of `era` under the assets root."""
    return [name for name in assets(era) if name.endswith(".js.gz")]

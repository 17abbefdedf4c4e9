/**
 * console-telemetry.js: the browser half of console-proxy, a Redux middleware that reports
 * which actions are dispatched on which route, and nothing else.
 *
 *   import { createTelemetryMiddleware } from './console-telemetry.js';
 *   const telemetry = createTelemetryMiddleware({ baseUrl: '' });
 *   const store = createStore(reducer, applyMiddleware(telemetry));
 *   telemetry.flush();   // send what is buffered now; resolves with stats(), never rejects
 *   telemetry.stop();    // stop for good: listeners removed, timers cleared, buffer discarded
 *   telemetry.stats();   // {state, buffered, captured, sent, beaconed, dropped, rejected, retries}
 *
 * Each event is `{type, route}`: the action's type and the route it was dispatched on (the new
 * location for router change actions, the current location otherwise), with query and fragment
 * removed unless `keepQuery` / `keepFragment` say otherwise. The proxy anonymizes the route.
 *
 * Events are batched (by count and by age), buffered in a bounded queue (the oldest are dropped
 * and counted when it is full), and POSTed to `<baseUrl>/_telemetry/v1/events`. 429, 503 and
 * network failures are retried with exponential backoff and full jitter, never sooner than the
 * server's Retry-After. When the page is hidden or unloaded the buffer goes out with
 * navigator.sendBeacon, within the browser's 64 KiB keepalive budget, falling back to
 * fetch(..., {keepalive: true}). Before anything is sent `<baseUrl>/_telemetry/v1/status` is
 * asked; when it says `enabled: false` (or the proxy is not there) the client goes silent: it
 * sends nothing and keeps nothing.
 *
 * The middleware never throws into the application and never delays next(action): it calls
 * next(action) first, records two strings, and does all other work from timers.
 */

export const EVENTS_PATH = '/_telemetry/v1/events';
export const STATUS_PATH = '/_telemetry/v1/status';
export const ROUTER_LOCATION_CHANGE = '@@router/LOCATION_CHANGE';
/** The proxy accepts at most this many events in one batch. */
export const MAX_BATCH_EVENTS = 100;
/** The proxy's body limit, and the browser's budget for keepalive requests in flight. */
export const MAX_BATCH_BYTES = 65536;

export const DEFAULTS = Object.freeze({
  baseUrl: '',
  batchSize: 20,
  flushInterval: 5000,
  maxBuffer: 1000,
  baseDelay: 1000,
  maxDelay: 60000,
  maxRetryAfter: 3600000,
  keepQuery: false,
  keepFragment: false,
  credentials: 'same-origin',
});

const ENVELOPE_HEAD = '{"events":[';
const ENVELOPE_TAIL = ']}';

/**
 * Create the telemetry middleware. Every option is optional:
 * - baseUrl: where the proxy's `/_telemetry` endpoints live ('' = this origin).
 * - batchSize (1..100): send once this many events are buffered.
 * - flushInterval (ms): send once the oldest buffered event is this old.
 * - maxBuffer: keep at most this many events; the oldest are dropped (and counted) beyond it.
 * - baseDelay, maxDelay (ms): exponential backoff bounds for retries (full jitter).
 * - maxRetryAfter (ms): the longest Retry-After that is honoured as given.
 * - keepQuery, keepFragment: send `?query` / `#fragment` with the route (off by default).
 * - locationFromAction(action): the new location for a router change action (string or
 *   {pathname, search, hash}), or undefined for other actions. The default understands
 *   connected-react-router's and redux-first-history's `@@router/LOCATION_CHANGE`.
 * - filter(action): return false to leave an action out.
 * - getLocation(): the current location (default: window.location).
 * - fetch, sendBeacon, setTimeout, clearTimeout, random, now, window, document: injectable.
 */
export function createTelemetryMiddleware(options = {}) {
  const o = resolveOptions(options || {});
  const eventsUrl = o.baseUrl + EVENTS_PATH;
  const statusUrl = o.baseUrl + STATUS_PATH;
  const counters = { captured: 0, sent: 0, beaconed: 0, dropped: 0, rejected: 0, retries: 0 };

  let state = 'idle'; // idle -> pending (asking status) -> enabled | disabled; stopped at any time
  let buffer = []; // {type, route, bytes, at}
  let inflight = null; // {events, bytes, done: Promise}
  let timer = null;
  let timerDue = 0;
  let retryAt = 0;
  let attempt = 0;
  let statusAttempt = 0;
  let statusDone = null;
  let listening = false;
  // Bytes handed to sendBeacon since the page was last visible: the browser counts them against
  // its keepalive budget until they are delivered, which the page cannot observe.
  let hiddenBytes = 0;

  function middleware(store) {
    safely(start);
    return (next) => (action) => {
      const result = next(action);
      safely(() => capture(action));
      return result;
    };
  }

  function start() {
    if (state !== 'idle') return;
    state = 'pending';
    listen();
    // Deferred: installing the middleware must not start I/O inside createStore.
    statusDone = new Promise((resolve) => {
      if (!later(0, () => askStatus(resolve))) {
        silence();
        resolve();
      }
    });
  }

  function askStatus(resolve) {
    if (state !== 'pending') return resolve();
    let request;
    try {
      request = o.fetch(statusUrl, { method: 'GET', credentials: o.credentials, headers: { Accept: 'application/json' } });
    } catch {
      request = Promise.reject(new Error('fetch failed'));
    }
    Promise.resolve(request)
      .then(async (response) => {
        if (state !== 'pending') return resolve();
        if (response.ok) {
          const body = await response.json();
          if (body && body.enabled === true) enable();
          else silence();
          return resolve();
        }
        if (isRetryable(response.status)) return retryStatus(retryAfterMs(response), resolve);
        // Anything else (404: no proxy here) means nobody is listening: stay silent.
        silence();
        return resolve();
      }, () => retryStatus(null, resolve))
      .catch(() => {
        silence();
        resolve();
      });
  }

  function retryStatus(minimum, resolve) {
    if (state !== 'pending') return resolve();
    statusAttempt += 1;
    if (!later(backoff(statusAttempt, minimum), () => askStatus(resolve))) {
      silence();
      resolve();
    }
  }

  function enable() {
    state = 'enabled';
    schedule();
  }

  function silence() {
    if (state === 'stopped') return;
    state = 'disabled';
    shutDown();
  }

  function stop() {
    safely(() => {
      state = 'stopped';
      shutDown();
    });
  }

  function shutDown() {
    buffer = [];
    cancelTimer();
    unlisten();
  }

  function capture(action) {
    if (state !== 'pending' && state !== 'enabled') return;
    if (!action || typeof action !== 'object' || typeof action.type !== 'string') return;
    if (o.filter && !o.filter(action)) return;
    const route = routeOf(action);
    if (typeof route !== 'string') return;
    const event = { type: action.type, route };
    const bytes = utf8Length(JSON.stringify(event));
    counters.captured += 1;
    if (bytes + ENVELOPE_HEAD.length + ENVELOPE_TAIL.length > MAX_BATCH_BYTES) {
      counters.dropped += 1;
      return;
    }
    buffer.push({ type: event.type, route: event.route, bytes, at: o.now() });
    trim();
    schedule();
  }

  function routeOf(action) {
    const fromAction = o.locationFromAction(action);
    const where = fromAction === undefined || fromAction === null ? o.getLocation() : fromAction;
    return cleanRoute(where, o.keepQuery, o.keepFragment);
  }

  function trim() {
    const excess = buffer.length - o.maxBuffer;
    if (excess > 0) {
      buffer.splice(0, excess);
      counters.dropped += excess;
    }
  }

  // One timer drives sending: it fires when a batch is full, when the oldest event is old
  // enough, or when a backoff ends; sooner wins.
  function schedule() {
    if (state !== 'enabled' || inflight || buffer.length === 0) return;
    const now = o.now();
    let due = buffer.length >= o.batchSize ? now : buffer[0].at + o.flushInterval;
    due = Math.max(due, retryAt);
    if (timer !== null && timerDue <= due) return;
    cancelTimer();
    timerDue = due;
    timer = o.setTimeout(() => {
      timer = null;
      safely(pump);
    }, Math.max(0, due - now));
  }

  function cancelTimer() {
    if (timer !== null) {
      safely(() => o.clearTimeout(timer));
      timer = null;
    }
  }

  function pump() {
    if (state !== 'enabled' || inflight || buffer.length === 0) return;
    const now = o.now();
    if (now < retryAt) return schedule();
    if (buffer.length < o.batchSize && buffer[0].at + o.flushInterval > now) return schedule();
    send();
  }

  // Send the next batch with fetch; resolves true when it was accepted (or rejected for good).
  function send() {
    const events = take(o.batchSize, MAX_BATCH_BYTES);
    if (events.length === 0) return Promise.resolve(true);
    const bytes = batchBytes(events);
    const done = post(events).then(
      (outcome) => {
        inflight = null;
        settle(events, outcome);
        schedule();
        return outcome.ok;
      },
      () => {
        inflight = null;
        return false;
      },
    );
    inflight = { events, bytes, done };
    return done;
  }

  // keepalive: a batch in flight when the page goes away is still delivered.
  function post(events) {
    let request;
    try {
      request = o.fetch(eventsUrl, {
        method: 'POST',
        credentials: o.credentials,
        headers: { 'Content-Type': 'application/json' },
        body: encode(events),
        keepalive: true,
      });
    } catch {
      request = Promise.reject(new Error('fetch failed'));
    }
    return Promise.resolve(request).then(
      (response) => ({ status: response.status, ok: response.status >= 200 && response.status < 300, wait: retryAfterMs(response) }),
      () => ({ status: 0, ok: false, wait: null }),
    );
  }

  function settle(events, outcome) {
    if (outcome.status === 204) {
      // The proxy kept nothing: telemetry was turned off while we were running.
      silence();
      return;
    }
    if (outcome.ok) {
      attempt = 0;
      retryAt = 0;
      counters.sent += events.length;
      return;
    }
    if (outcome.status === 0 || isRetryable(outcome.status)) {
      attempt += 1;
      counters.retries += 1;
      retryAt = o.now() + backoff(attempt, outcome.wait);
      requeue(events);
      return;
    }
    // 400, 413, 415...: sending the same batch again cannot succeed.
    attempt = 0;
    counters.rejected += events.length;
  }

  function requeue(events) {
    if (state !== 'enabled') return;
    buffer = events.concat(buffer);
    trim();
  }

  // Remove and return events from the front of the buffer: at most `count` of them, and at
  // most `budget` bytes once wrapped in the batch envelope.
  function take(count, budget) {
    let size = ENVELOPE_HEAD.length + ENVELOPE_TAIL.length;
    let n = 0;
    const limit = Math.min(count, MAX_BATCH_EVENTS, buffer.length);
    while (n < limit) {
      const extra = buffer[n].bytes + (n > 0 ? 1 : 0);
      if (size + extra > budget) break;
      size += extra;
      n += 1;
    }
    return buffer.splice(0, n);
  }

  function onHide() {
    if (state !== 'enabled' || buffer.length === 0) return;
    cancelTimer();
    // sendBeacon and keepalive fetches share one budget per page; count what is in flight,
    // including beacons of an earlier hide (pagehide and visibilitychange both come on unload).
    let budget = MAX_BATCH_BYTES - hiddenBytes - (inflight ? inflight.bytes : 0);
    while (buffer.length > 0) {
      const events = take(MAX_BATCH_EVENTS, budget);
      if (events.length === 0) break;
      const bytes = batchBytes(events);
      budget -= bytes;
      hiddenBytes += bytes;
      beacon(events);
    }
    // Whatever did not fit stays buffered: if the page comes back, it goes out as usual.
    schedule();
  }

  function beacon(events) {
    let queued = false;
    if (o.sendBeacon) {
      try {
        queued = o.sendBeacon(eventsUrl, encode(events)) === true;
      } catch {
        queued = false;
      }
    }
    if (queued) {
      counters.sent += events.length;
      counters.beaconed += events.length;
      return;
    }
    post(events).then((outcome) => {
      settle(events, outcome);
      schedule();
    });
  }

  function onVisibility() {
    if (!o.document) return;
    if (o.document.visibilityState === 'hidden') onHide();
    else if (o.document.visibilityState === 'visible') onShow();
  }

  function onShow() {
    // Back in view (or back from the back/forward cache): earlier beacons have had their chance.
    hiddenBytes = 0;
    schedule();
  }

  const hideListener = () => safely(onHide);
  const showListener = () => safely(onShow);
  const visibilityListener = () => safely(onVisibility);

  function listen() {
    if (listening) return;
    if (o.window && typeof o.window.addEventListener === 'function') {
      o.window.addEventListener('pagehide', hideListener);
      o.window.addEventListener('pageshow', showListener);
    }
    if (o.document && typeof o.document.addEventListener === 'function') {
      o.document.addEventListener('visibilitychange', visibilityListener);
    }
    listening = true;
  }

  function unlisten() {
    if (!listening) return;
    if (o.window && typeof o.window.removeEventListener === 'function') {
      o.window.removeEventListener('pagehide', hideListener);
      o.window.removeEventListener('pageshow', showListener);
    }
    if (o.document && typeof o.document.removeEventListener === 'function') {
      o.document.removeEventListener('visibilitychange', visibilityListener);
    }
    listening = false;
  }

  async function flush() {
    try {
      if (statusDone) await statusDone;
      if (inflight) await inflight.done;
      // One pass over what is buffered now; a failure leaves the rest to the backoff timer.
      let rounds = Math.ceil(buffer.length / o.batchSize);
      while (state === 'enabled' && buffer.length > 0 && rounds > 0 && !inflight) {
        rounds -= 1;
        cancelTimer();
        const ok = await send();
        if (!ok || retryAt > o.now()) break;
      }
    } catch {
      // flush() reports through stats(); it never rejects.
    }
    return stats();
  }

  function stats() {
    return { state, buffered: buffer.length + (inflight ? inflight.events.length : 0), ...counters };
  }

  function backoff(n, minimum) {
    const ceiling = Math.min(o.maxDelay, o.baseDelay * 2 ** Math.min(n - 1, 30));
    const jittered = Math.floor(o.random() * ceiling);
    const floor = minimum === null || minimum === undefined ? 0 : Math.min(minimum, o.maxRetryAfter);
    return Math.max(jittered, floor);
  }

  function retryAfterMs(response) {
    let value = null;
    try {
      value = response && response.headers && response.headers.get('Retry-After');
    } catch {
      value = null;
    }
    return parseRetryAfter(value, o.now());
  }

  function later(delay, fn) {
    try {
      o.setTimeout(() => safely(fn), delay);
      return true;
    } catch {
      return false;
    }
  }

  middleware.flush = flush;
  middleware.stop = stop;
  middleware.stats = stats;
  return middleware;
}

export default createTelemetryMiddleware;

/** The default: the new location of connected-react-router / redux-first-history changes. */
export function defaultLocationFromAction(action) {
  if (action.type !== ROUTER_LOCATION_CHANGE) return undefined;
  const payload = action.payload;
  if (!payload || typeof payload !== 'object') return undefined;
  // connected-react-router: payload.location; react-router-redux 4: the payload is the location.
  const location = payload.location && typeof payload.location === 'object' ? payload.location : payload;
  return typeof location.pathname === 'string' ? location : undefined;
}

/** A route without scheme and host, and without query and fragment unless kept. */
export function cleanRoute(where, keepQuery = false, keepFragment = false) {
  let pathname;
  let search = '';
  let hash = '';
  if (typeof where === 'string') {
    let rest = where.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
    const hashAt = rest.indexOf('#');
    if (hashAt >= 0) {
      hash = rest.slice(hashAt);
      rest = rest.slice(0, hashAt);
    }
    const queryAt = rest.indexOf('?');
    if (queryAt >= 0) {
      search = rest.slice(queryAt);
      rest = rest.slice(0, queryAt);
    }
    pathname = rest;
  } else if (where && typeof where === 'object' && typeof where.pathname === 'string') {
    // A router's pathname may itself carry a query when an app pushed a raw string.
    return cleanRoute(where.pathname + stringOr(where.search) + stringOr(where.hash), keepQuery, keepFragment);
  } else {
    return undefined;
  }
  if (pathname === '') pathname = '/';
  return pathname + (keepQuery && search !== '?' ? search : '') + (keepFragment && hash !== '#' ? hash : '');
}

/** Retry-After in milliseconds (delta-seconds or an HTTP date), or null when absent or bad. */
export function parseRetryAfter(value, now) {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day and month; a bare number with a sign is no delay at all.
  if (!/^[A-Za-z]{3}, /.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

/** Wrap events in the batch envelope the proxy accepts. */
export function encode(events) {
  return ENVELOPE_HEAD + events.map((e) => JSON.stringify({ type: e.type, route: e.route })).join(',') + ENVELOPE_TAIL;
}

function batchBytes(events) {
  let size = ENVELOPE_HEAD.length + ENVELOPE_TAIL.length + Math.max(0, events.length - 1);
  for (const e of events) size += e.bytes;
  return size;
}

function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

function isRetryable(status) {
  return status === 429 || status === 503;
}

function stringOr(value) {
  return typeof value === 'string' ? value : '';
}

function safely(fn) {
  try {
    const result = fn();
    if (result && typeof result.catch === 'function') result.catch(() => {});
  } catch {
    // Telemetry must never break the console.
  }
}

function clampInt(value, low, high, fallback) {
  const n = Number(value);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(high, Math.max(low, Math.floor(n)));
}

function resolveOptions(options) {
  const g = globalThis;
  const pick = (name, fallback) => (options[name] === undefined || options[name] === null ? fallback : options[name]);
  const nav = g.navigator;
  const defaultBeacon = nav && typeof nav.sendBeacon === 'function' ? (url, body) => nav.sendBeacon(url, body) : null;
  const baseUrl = String(pick('baseUrl', DEFAULTS.baseUrl)).replace(/\/+$/, '');
  return {
    baseUrl,
    batchSize: clampInt(options.batchSize, 1, MAX_BATCH_EVENTS, DEFAULTS.batchSize),
    flushInterval: clampInt(options.flushInterval, 0, 3600000, DEFAULTS.flushInterval),
    maxBuffer: clampInt(options.maxBuffer, 1, 1000000, DEFAULTS.maxBuffer),
    baseDelay: clampInt(options.baseDelay, 1, 3600000, DEFAULTS.baseDelay),
    maxDelay: clampInt(options.maxDelay, 1, 86400000, DEFAULTS.maxDelay),
    maxRetryAfter: clampInt(options.maxRetryAfter, 0, 86400000, DEFAULTS.maxRetryAfter),
    keepQuery: options.keepQuery === true,
    keepFragment: options.keepFragment === true,
    credentials: pick('credentials', DEFAULTS.credentials),
    locationFromAction: typeof options.locationFromAction === 'function' ? options.locationFromAction : defaultLocationFromAction,
    filter: typeof options.filter === 'function' ? options.filter : null,
    getLocation: typeof options.getLocation === 'function' ? options.getLocation : () => g.location,
    fetch: pick('fetch', typeof g.fetch === 'function' ? (...args) => g.fetch(...args) : () => Promise.reject(new Error('no fetch'))),
    sendBeacon: options.sendBeacon === undefined ? defaultBeacon : options.sendBeacon,
    setTimeout: pick('setTimeout', (fn, ms) => g.setTimeout(fn, ms)),
    clearTimeout: pick('clearTimeout', (id) => g.clearTimeout(id)),
    random: pick('random', Math.random),
    now: pick('now', Date.now),
    window: options.window === undefined ? (typeof g.addEventListener === 'function' ? g : null) : options.window,
    document: options.document === undefined ? g.document || null : options.document,
  };
}

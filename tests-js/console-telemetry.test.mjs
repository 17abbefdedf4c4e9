// Unit tests of static/console-telemetry.js with node's built-in test runner: `node --test tests-js/`.
// Time, timers, randomness, fetch, sendBeacon and the page's event targets are all injected.
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, beforeEach, test } from 'node:test';

import {
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  cleanRoute,
  createTelemetryMiddleware,
  parseRetryAfter,
} from '../static/console-telemetry.js';

const CANARY = 'CANARY-7f3a';

let unhandled = [];
const onUnhandled = (reason) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, []);
});

class FakeTarget {
  constructor() {
    this.listeners = new Map();
    this.visibilityState = 'visible';
  }
  addEventListener(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
  }
  removeEventListener(name, fn) {
    this.listeners.get(name)?.delete(fn);
  }
  count(name) {
    return this.listeners.get(name)?.size ?? 0;
  }
  fire(name) {
    for (const fn of [...(this.listeners.get(name) ?? [])]) fn({ type: name });
  }
}

function response(status, { body = null, headers = {} } = {}) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => lower[name.toLowerCase()] ?? null },
    json: async () => body,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

// A page with a fake clock. `status` answers /status; `answers` is a queue of answers for
// /events (a response, 'network' for a failed fetch, or 'hang' for one that never ends).
function page({ status = response(200, { body: { enabled: true, mode: 'server', upload: false } }), answers = [], beacon = true, ...options } = {}) {
  const h = {
    now: 1_000_000,
    timers: [],
    seq: 0,
    requests: [],
    statusRequests: 0,
    beacons: [],
    location: { pathname: '/console/settings', search: '', hash: '' },
    window: new FakeTarget(),
    document: new FakeTarget(),
    answers,
  };
  h.setTimeout = (fn, ms) => {
    h.seq += 1;
    h.timers.push({ id: h.seq, at: h.now + Math.max(0, ms), fn });
    return h.seq;
  };
  h.clearTimeout = (id) => {
    h.timers = h.timers.filter((t) => t.id !== id);
  };
  h.fetch = (url, init = {}) => {
    if (url.endsWith('/_telemetry/v1/status')) {
      h.statusRequests += 1;
      const answer = typeof status === 'function' ? status(h.statusRequests) : status;
      if (answer === 'network') return Promise.reject(new TypeError('Failed to fetch'));
      return Promise.resolve(answer);
    }
    h.requests.push({ url, init, events: JSON.parse(init.body).events });
    const answer = h.answers.length > 0 ? h.answers.shift() : response(202, { body: { accepted: 1, dropped: 0 } });
    if (answer === 'network') return Promise.reject(new TypeError('Failed to fetch'));
    if (answer === 'hang') return new Promise(() => {});
    if (answer === 'throw') throw new TypeError('synchronous failure');
    return Promise.resolve(answer);
  };
  h.sendBeacon = (url, body) => {
    h.beacons.push({ url, body, events: JSON.parse(body).events });
    return typeof beacon === 'function' ? beacon(body) : beacon;
  };
  h.advance = async (ms) => {
    const end = h.now + ms;
    await settle();
    for (;;) {
      h.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = h.timers[0];
      if (!next || next.at > end) break;
      h.timers.shift();
      h.now = Math.max(h.now, next.at);
      next.fn();
      await settle();
    }
    h.now = end;
    await settle();
  };
  h.telemetry = createTelemetryMiddleware({
    fetch: h.fetch,
    sendBeacon: h.sendBeacon,
    setTimeout: h.setTimeout,
    clearTimeout: h.clearTimeout,
    now: () => h.now,
    random: () => 0,
    getLocation: () => h.location,
    window: h.window,
    document: h.document,
    ...options,
  });
  h.reduced = [];
  const store = { getState: () => ({}), dispatch: (a) => h.dispatch(a) };
  h.dispatch = h.telemetry(store)((action) => {
    h.reduced.push(action);
    return { handled: action && action.type };
  });
  h.sent = () => h.requests.flatMap((r) => r.events);
  h.beaconed = () => h.beacons.flatMap((b) => b.events);
  return h;
}

function dispatchMany(h, n, prefix = 'Data/ACTION') {
  for (let i = 0; i < n; i += 1) h.dispatch({ type: `${prefix}_${i}`, payload: { secret: CANARY } });
}

test('an event is the action type and the current route, nothing else', async () => {
  const h = page({ batchSize: 1 });
  h.location = { pathname: '/console/data/prod%20db/schema/public/tables/us%C3%BArios/browse', search: `?filter=email;$eq;${CANARY}`, hash: '#x' };
  h.dispatch({ type: 'Data/SET_TABLE', payload: { table: CANARY }, meta: { user: CANARY }, error: CANARY });
  await h.advance(0);
  assert.equal(h.requests.length, 1);
  const { url, init } = h.requests[0];
  assert.equal(url, '/_telemetry/v1/events');
  assert.equal(init.method, 'POST');
  assert.equal(init.keepalive, true);
  assert.equal(init.headers['Content-Type'], 'application/json');
  assert.equal(init.body, '{"events":[{"type":"Data/SET_TABLE","route":"/console/data/prod%20db/schema/public/tables/us%C3%BArios/browse"}]}');
  assert.ok(!init.body.includes(CANARY));
});

test('a router change reports the new location, stripped of query and fragment', async () => {
  const h = page({ batchSize: 2 });
  h.location = { pathname: '/console/settings', search: '', hash: '' };
  h.dispatch({ type: '@@router/LOCATION_CHANGE', payload: { location: { pathname: '/console/events/data/n%C3%B6tify/logs', search: `?id=${CANARY}`, hash: `#${CANARY}` }, action: 'PUSH' } });
  h.dispatch({ type: '@@router/LOCATION_CHANGE', payload: { pathname: `/console/actions/manage/insertUser/modify?x=${CANARY}` } });
  await h.advance(0);
  assert.deepEqual(h.sent(), [
    { type: '@@router/LOCATION_CHANGE', route: '/console/events/data/n%C3%B6tify/logs' },
    { type: '@@router/LOCATION_CHANGE', route: '/console/actions/manage/insertUser/modify' },
  ]);
});

test('a configured extractor reads other routers, and query and fragment may be kept', async () => {
  const h = page({
    batchSize: 2,
    keepQuery: true,
    keepFragment: true,
    locationFromAction: (action) => (action.type === 'ROUTER/NAVIGATED' ? action.payload.url : undefined),
  });
  h.location = { pathname: '/console/api/rest', search: '?page=2', hash: '#top' };
  h.dispatch({ type: 'ROUTER/NAVIGATED', payload: { url: 'http://localhost:9695/console/data/sql?tab=1#run' } });
  h.dispatch({ type: 'App/OTHER' });
  await h.advance(0);
  assert.deepEqual(h.sent(), [
    { type: 'ROUTER/NAVIGATED', route: '/console/data/sql?tab=1#run' },
    { type: 'App/OTHER', route: '/console/api/rest?page=2#top' },
  ]);
});

for (const [where, keepQuery, keepFragment, expected] of [
  ['/console/a?b=1#c', false, false, '/console/a'],
  ['/console/a?b=1#c', true, false, '/console/a?b=1'],
  ['/console/a?b=1#c', false, true, '/console/a#c'],
  ['/console/a#c?b=1', true, true, '/console/a#c?b=1'],
  ['https://example.test:8080/console/a%2Fb?x', false, false, '/console/a%2Fb'],
  ['https://example.test', false, false, '/'],
  ['?only=query', false, false, '/'],
  [{ pathname: '/console/x', search: '?q=1', hash: '#h' }, false, false, '/console/x'],
  [{ pathname: '/console/x?raw=1' }, false, false, '/console/x'],
  [{ pathname: 42 }, false, false, undefined],
  [null, false, false, undefined],
]) {
  test(`cleanRoute(${JSON.stringify(where)}, ${keepQuery}, ${keepFragment})`, () => {
    assert.equal(cleanRoute(where, keepQuery, keepFragment), expected);
  });
}

test('batches by count: full batches go at once, one request at a time', async () => {
  const h = page({ batchSize: 3, flushInterval: 5000 });
  dispatchMany(h, 7);
  await h.advance(0);
  assert.deepEqual(h.requests.map((r) => r.events.length), [3, 3]);
  await h.advance(4999);
  assert.equal(h.requests.length, 2);
  await h.advance(1);
  assert.deepEqual(h.requests.map((r) => r.events.length), [3, 3, 1]);
  assert.deepEqual(h.sent().map((e) => e.type), [0, 1, 2, 3, 4, 5, 6].map((i) => `Data/ACTION_${i}`));
  assert.equal(h.telemetry.stats().sent, 7);
});

test('batches by time: a partial batch waits for the oldest event to age', async () => {
  const h = page({ batchSize: 20, flushInterval: 5000 });
  await h.advance(0);
  dispatchMany(h, 1);
  await h.advance(3000);
  dispatchMany(h, 1, 'Later');
  await h.advance(1999);
  assert.equal(h.requests.length, 0);
  await h.advance(1);
  assert.deepEqual(h.requests.map((r) => r.events.length), [2]);
});

test('batch size is capped at the 100 events the proxy accepts', async () => {
  const h = page({ batchSize: 500 });
  dispatchMany(h, 250);
  await h.advance(0);
  assert.deepEqual(h.requests.map((r) => r.events.length), [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS]);
});

test('the buffer is bounded: the oldest events are dropped and counted', async () => {
  let answer;
  const h = page({ maxBuffer: 5, batchSize: 100, status: () => new Promise((resolve) => { answer = resolve; }) });
  await h.advance(0);
  dispatchMany(h, 8);
  assert.deepEqual(h.telemetry.stats(), { state: 'pending', buffered: 5, captured: 8, sent: 0, beaconed: 0, dropped: 3, rejected: 0, retries: 0 });
  answer(response(200, { body: { enabled: true } }));
  await h.advance(5000);
  assert.deepEqual(h.sent().map((e) => e.type), [3, 4, 5, 6, 7].map((i) => `Data/ACTION_${i}`));
});

test('an event too large for any batch is dropped and counted', async () => {
  const h = page({ batchSize: 1 });
  h.location = { pathname: `/console/${'x'.repeat(MAX_BATCH_BYTES)}` };
  h.dispatch({ type: 'Huge' });
  await h.advance(10000);
  assert.equal(h.requests.length, 0);
  assert.equal(h.telemetry.stats().dropped, 1);
});

test('429 with Retry-After in seconds: no retry before it', async () => {
  const h = page({ batchSize: 2, answers: [response(429, { headers: { 'Retry-After': '7' } })] });
  dispatchMany(h, 2);
  await h.advance(0);
  assert.equal(h.requests.length, 1);
  await h.advance(6999);
  assert.equal(h.requests.length, 1);
  await h.advance(1);
  assert.equal(h.requests.length, 2);
  assert.deepEqual(h.requests[1].events, h.requests[0].events);
  assert.deepEqual(h.telemetry.stats(), { state: 'enabled', buffered: 0, captured: 2, sent: 2, beaconed: 0, dropped: 0, rejected: 0, retries: 1 });
});

test('503 with Retry-After as an HTTP date', async () => {
  const h = page({ batchSize: 1 });
  h.answers.push(response(503, { headers: { 'Retry-After': new Date(h.now + 12000).toUTCString() } }));
  dispatchMany(h, 1);
  await h.advance(0);
  await h.advance(11999);
  assert.equal(h.requests.length, 1);
  await h.advance(1);
  assert.equal(h.requests.length, 2);
});

// When each /events request was made, in ms after the first one, stepping the clock by `step`.
async function requestTimes(h, horizon, step) {
  await h.advance(0);
  const start = h.now;
  const times = h.requests.map(() => 0);
  for (let t = 0; t < horizon; t += step) {
    await h.advance(step);
    while (times.length < h.requests.length) times.push(h.now - start);
  }
  return times;
}

test('network failures back off exponentially with full jitter, capped', async () => {
  const h = page({ batchSize: 1, baseDelay: 1000, maxDelay: 8000, random: () => 0.5, answers: ['network', 'network', 'throw', 'network', 'network'] });
  dispatchMany(h, 1);
  // Attempts follow waits of 0.5 * 1000, 2000, 4000, 8000, 8000 (capped).
  assert.deepEqual(await requestTimes(h, 30000, 100), [0, 500, 1500, 3500, 7500, 11500]);
  assert.equal(h.telemetry.stats().sent, 1);
  assert.equal(h.telemetry.stats().retries, 5);
});

for (const [random, expected] of [
  [0, [0, 0, 0]],
  [0.25, [0, 250, 750]],
  [0.999, [0, 999, 2997]],
]) {
  test(`full jitter: random() = ${random} waits random() * ceiling`, async () => {
    const h = page({ batchSize: 1, baseDelay: 1000, random: () => random, answers: [response(503), response(503)] });
    dispatchMany(h, 1);
    assert.deepEqual(await requestTimes(h, 4000, 1), expected);
  });
}

test('Retry-After is a floor under the jittered delay, not a replacement for it', async () => {
  const h = page({ batchSize: 1, baseDelay: 4000, random: () => 0.75, answers: [response(429, { headers: { 'Retry-After': '1' } })] });
  dispatchMany(h, 1);
  assert.deepEqual(await requestTimes(h, 5000, 100), [0, 3000]);
});

for (const status of [400, 413, 415, 500]) {
  test(`${status} is not retried: the batch is counted as rejected`, async () => {
    const h = page({ batchSize: 2, answers: [response(status)] });
    dispatchMany(h, 2);
    await h.advance(120000);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(h.telemetry.stats(), { state: 'enabled', buffered: 0, captured: 2, sent: 0, beaconed: 0, dropped: 0, rejected: 2, retries: 0 });
  });
}

test('pagehide sends the buffer with sendBeacon as text, split within the 64 KiB budget', async () => {
  const h = page({ batchSize: 100, flushInterval: 60000 });
  await h.advance(0);
  const segment = 'n%C3%A3o'.repeat(50);
  h.location = { pathname: `/console/data/${segment}/schema/s/tables/t/browse` };
  dispatchMany(h, 400);
  h.window.fire('pagehide');
  assert.equal(h.requests.length, 0);
  assert.ok(h.beacons.length >= 2);
  let total = 0;
  for (const b of h.beacons) {
    assert.equal(b.url, '/_telemetry/v1/events');
    assert.equal(typeof b.body, 'string');
    assert.ok(b.events.length <= MAX_BATCH_EVENTS);
    total += Buffer.byteLength(b.body);
  }
  assert.ok(total <= MAX_BATCH_BYTES, `${total} bytes`);
  const beaconed = h.beaconed().length;
  assert.ok(beaconed > 100 && beaconed < 400, `${beaconed} beaconed`);
  assert.deepEqual(h.beaconed().map((e) => e.type), [...Array(beaconed).keys()].map((i) => `Data/ACTION_${i}`));
  // What did not fit stays buffered and goes out as usual if the page comes back.
  assert.equal(h.telemetry.stats().buffered, 400 - beaconed);
  await h.advance(60000);
  assert.equal(h.sent().length + beaconed, 400);
});

test('the beacon budget leaves room for a batch still in flight', async () => {
  const h = page({ batchSize: 100, answers: ['hang'] });
  await h.advance(0);
  h.location = { pathname: `/console/${'a'.repeat(400)}` };
  dispatchMany(h, 100);
  await h.advance(0);
  assert.equal(h.requests.length, 1);
  const inflight = Buffer.byteLength(h.requests[0].init.body);
  dispatchMany(h, 300, 'More');
  h.document.visibilityState = 'hidden';
  h.document.fire('visibilitychange');
  const beaconBytes = h.beacons.reduce((n, b) => n + Buffer.byteLength(b.body), 0);
  assert.ok(inflight + beaconBytes <= MAX_BATCH_BYTES, `${inflight} + ${beaconBytes}`);
  assert.ok(beaconBytes > MAX_BATCH_BYTES - inflight - 500, `${beaconBytes} leaves the budget unused`);
});

test('pagehide then visibilitychange share one 64 KiB budget until the page is visible again', async () => {
  const h = page({ batchSize: 100, flushInterval: 60000 });
  await h.advance(0);
  h.location = { pathname: `/console/${'b'.repeat(1000)}` };
  dispatchMany(h, 40);
  h.window.fire('pagehide');
  const first = h.beacons.reduce((n, b) => n + Buffer.byteLength(b.body), 0);
  assert.ok(first > 30000, `${first}`);
  dispatchMany(h, 100, 'Late');
  h.document.visibilityState = 'hidden';
  h.document.fire('visibilitychange');
  const total = h.beacons.reduce((n, b) => n + Buffer.byteLength(b.body), 0);
  assert.ok(total <= MAX_BATCH_BYTES, `${total} bytes`);
  assert.ok(total > MAX_BATCH_BYTES - 1100, `${total} leaves the budget unused`);
  const waiting = h.telemetry.stats().buffered;
  assert.ok(waiting > 0);
  // Visible again: the earlier beacons are done with, and the rest goes out as usual.
  h.document.visibilityState = 'visible';
  h.document.fire('visibilitychange');
  await h.advance(60000);
  assert.equal(h.sent().length, waiting);
  h.document.visibilityState = 'hidden';
  dispatchMany(h, 30, 'Again');
  h.document.fire('visibilitychange');
  const again = h.beacons.slice(-1)[0].events.length;
  assert.equal(again, 30);
});

test('visibilitychange to visible sends nothing; to hidden flushes', async () => {
  const h = page({ batchSize: 50 });
  await h.advance(0);
  dispatchMany(h, 3);
  h.document.fire('visibilitychange');
  assert.equal(h.beacons.length, 0);
  h.document.visibilityState = 'hidden';
  h.document.fire('visibilitychange');
  assert.deepEqual(h.beacons.map((b) => b.events.length), [3]);
  h.window.fire('pagehide');
  assert.equal(h.beacons.length, 1);
  assert.equal(h.telemetry.stats().beaconed, 3);
});

test('a refused beacon falls back to fetch with keepalive', async () => {
  const h = page({ batchSize: 50, beacon: false });
  await h.advance(0);
  dispatchMany(h, 3);
  h.window.fire('pagehide');
  assert.equal(h.beacons.length, 1);
  assert.equal(h.requests.length, 1);
  assert.equal(h.requests[0].init.keepalive, true);
  assert.equal(h.requests[0].events.length, 3);
  await h.advance(0);
  assert.equal(h.telemetry.stats().sent, 3);
});

test('without sendBeacon at all, pagehide uses fetch with keepalive', async () => {
  const h = page({ batchSize: 50, sendBeacon: null });
  await h.advance(0);
  dispatchMany(h, 2);
  h.window.fire('pagehide');
  assert.equal(h.beacons.length, 0);
  assert.deepEqual(h.requests.map((r) => [r.init.keepalive, r.events.length]), [[true, 2]]);
});

for (const [name, status] of [
  ['enabled: false', response(200, { body: { enabled: false, mode: 'cli', upload: false } })],
  ['no proxy (404)', response(404)],
  ['a status that is not JSON', { status: 200, ok: true, headers: { get: () => null }, json: async () => { throw new SyntaxError('bad'); } }],
  ['enabled missing', response(200, { body: { mode: 'server' } })],
]) {
  test(`silent when the status says ${name}: nothing sent, nothing kept`, async () => {
    const h = page({ status, batchSize: 1, flushInterval: 10 });
    dispatchMany(h, 5);
    await h.advance(0);
    dispatchMany(h, 5, 'After');
    await h.advance(60000);
    h.document.visibilityState = 'hidden';
    h.document.fire('visibilitychange');
    h.window.fire('pagehide');
    await h.telemetry.flush();
    assert.equal(h.statusRequests, 1);
    assert.equal(h.requests.length, 0);
    assert.equal(h.beacons.length, 0);
    assert.equal(h.telemetry.stats().state, 'disabled');
    assert.equal(h.telemetry.stats().buffered, 0);
    assert.equal(h.window.count('pagehide'), 0);
    assert.equal(h.document.count('visibilitychange'), 0);
    assert.equal(h.reduced.length, 10);
  });
}

test('nothing is sent before the status has answered, not even on pagehide', async () => {
  const h = page({ status: () => new Promise(() => {}), batchSize: 1 });
  dispatchMany(h, 3);
  await h.advance(60000);
  h.window.fire('pagehide');
  assert.equal(h.requests.length + h.beacons.length, 0);
  assert.equal(h.telemetry.stats().state, 'pending');
});

test('the status is asked again after 503 or a network failure, then events go', async () => {
  const h = page({ batchSize: 1, status: (n) => (n === 1 ? 'network' : n === 2 ? response(503, { headers: { 'Retry-After': '3' } }) : response(200, { body: { enabled: true } })) });
  dispatchMany(h, 1);
  await h.advance(2999);
  assert.equal(h.statusRequests, 2);
  assert.equal(h.requests.length, 0);
  await h.advance(1);
  assert.equal(h.statusRequests, 3);
  assert.equal(h.requests.length, 1);
});

test('a 204 from the events endpoint (telemetry turned off) silences the client', async () => {
  const h = page({ batchSize: 1, answers: [response(204)] });
  dispatchMany(h, 1);
  await h.advance(0);
  dispatchMany(h, 5, 'After');
  await h.advance(60000);
  h.window.fire('pagehide');
  assert.equal(h.requests.length, 1);
  assert.equal(h.beacons.length, 0);
  assert.equal(h.telemetry.stats().state, 'disabled');
});

test('next(action) runs first and synchronously; no I/O happens inside dispatch', () => {
  const h = page({ batchSize: 1 });
  const action = { type: 'Data/RUN_SQL', payload: CANARY };
  const result = h.dispatch(action);
  assert.deepEqual(result, { handled: 'Data/RUN_SQL' });
  assert.equal(h.reduced[0], action);
  assert.equal(h.statusRequests, 0);
  assert.equal(h.requests.length, 0);
});

test('no exception from telemetry reaches the application', async () => {
  const boom = () => {
    throw new Error('boom');
  };
  const h = page({
    batchSize: 1,
    getLocation: boom,
    filter: boom,
    locationFromAction: boom,
    answers: ['throw', 'network'],
  });
  for (const action of [null, undefined, 42, 'text', () => 1, { type: 7 }, { type: 'ok' }, Object.create(null)]) {
    assert.doesNotThrow(() => h.dispatch(action));
  }
  assert.equal(h.reduced.length, 8);
  await h.advance(60000);

  const g = page({ batchSize: 50, sendBeacon: boom, fetch: boom, setTimeout: boom, clearTimeout: boom, now: boom });
  assert.doesNotThrow(() => g.dispatch({ type: 'Data/SET_TABLE' }));
  assert.doesNotThrow(() => g.window.fire('pagehide'));
  assert.deepEqual(await g.telemetry.flush(), g.telemetry.stats());
  assert.doesNotThrow(() => g.telemetry.stop());
});

test('errors thrown by the application still reach the application', () => {
  const telemetry = createTelemetryMiddleware({ fetch: () => new Promise(() => {}), setTimeout: () => 0, window: null, document: null });
  const dispatch = telemetry({})(() => {
    throw new RangeError('reducer failed');
  });
  assert.throws(() => dispatch({ type: 'X' }), RangeError);
});

test('flush() sends what is buffered at once and resolves with the stats', async () => {
  const h = page({ batchSize: 3, flushInterval: 60000 });
  dispatchMany(h, 7);
  const flushed = h.telemetry.flush();
  await h.advance(0);
  const stats = await flushed;
  assert.equal(stats.sent, 7);
  assert.equal(stats.buffered, 0);
  assert.deepEqual(h.requests.map((r) => r.events.length), [3, 3, 1]);
});

test('stop() removes the listeners, clears the buffer and ends sending', async () => {
  const h = page({ batchSize: 10 });
  await h.advance(0);
  dispatchMany(h, 3);
  assert.equal(h.window.count('pagehide'), 1);
  assert.equal(h.document.count('visibilitychange'), 1);
  h.telemetry.stop();
  assert.equal(h.window.count('pagehide'), 0);
  assert.equal(h.window.count('pageshow'), 0);
  assert.equal(h.document.count('visibilitychange'), 0);
  dispatchMany(h, 20);
  await h.advance(60000);
  assert.equal(h.requests.length, 0);
  assert.deepEqual(h.telemetry.stats(), { state: 'stopped', buffered: 0, captured: 3, sent: 0, beaconed: 0, dropped: 0, rejected: 0, retries: 0 });
});

for (const [value, expected] of [
  ['0', 0],
  [' 120 ', 120000],
  ['Fri, 27 Nov 2026 19:00:30 GMT', 30000],
  ['Fri, 27 Nov 2026 18:00:00 GMT', 0],
  ['-1', null],
  ['soon', null],
  [null, null],
]) {
  test(`parseRetryAfter(${JSON.stringify(value)})`, () => {
    assert.equal(parseRetryAfter(value, Date.parse('2026-11-27T19:00:00Z')), expected);
  });
}

test('a base URL points both endpoints at the proxy', async () => {
  const h = page({ baseUrl: 'http://127.0.0.1:9695/', batchSize: 1 });
  const seen = [];
  const original = h.fetch;
  h.telemetry.stop();
  const t = createTelemetryMiddleware({
    baseUrl: 'http://127.0.0.1:9695/',
    batchSize: 1,
    fetch: (url, init) => {
      seen.push(url);
      return original(url, init);
    },
    setTimeout: h.setTimeout,
    clearTimeout: h.clearTimeout,
    now: () => h.now,
    window: null,
    document: null,
    getLocation: () => '/console/',
  });
  t({})(() => undefined)({ type: 'X' });
  await h.advance(0);
  assert.deepEqual(seen, ['http://127.0.0.1:9695/_telemetry/v1/status', 'http://127.0.0.1:9695/_telemetry/v1/events']);
});

test('against a real HTTP server with real timers and fetch', async () => {
  const bodies = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      if (req.url === '/_telemetry/v1/status') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"enabled": true, "mode": "cli", "upload": false}');
        return;
      }
      bodies.push({ url: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
      if (bodies.length === 1) {
        res.writeHead(429, { 'Retry-After': '0' });
        res.end();
        return;
      }
      res.writeHead(202, { 'Content-Type': 'application/json' });
      res.end('{"accepted": 2, "dropped": 0}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address();
    const telemetry = createTelemetryMiddleware({
      baseUrl: `http://127.0.0.1:${port}`,
      batchSize: 2,
      baseDelay: 10,
      window: null,
      document: null,
      getLocation: () => ({ pathname: '/console/remote-schemas/manage/pay%2Fments/details', search: `?q=${CANARY}` }),
    });
    const dispatch = telemetry({})(() => undefined);
    dispatch({ type: 'RemoteSchemas/FETCH', payload: CANARY });
    dispatch({ type: 'RemoteSchemas/VIEW', payload: CANARY });
    for (let i = 0; i < 200 && telemetry.stats().sent < 2; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    telemetry.stop();
    assert.equal(bodies.length, 2);
    assert.deepEqual(bodies[1], {
      url: '/_telemetry/v1/events',
      type: 'application/json',
      body: { events: [
        { type: 'RemoteSchemas/FETCH', route: '/console/remote-schemas/manage/pay%2Fments/details' },
        { type: 'RemoteSchemas/VIEW', route: '/console/remote-schemas/manage/pay%2Fments/details' },
      ] },
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

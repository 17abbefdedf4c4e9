// Unit tests of the demo console's route helpers (console/src/paths.js): `node --test tests-js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { nameOf, paths } from '../console/src/paths.js';

test('nameOf takes a known name as it is, decodes anything else it can, and keeps what it cannot', () => {
  const names = ['users', 'odd%41name', 'with space'];
  assert.equal(nameOf(undefined, names), undefined);
  assert.equal(nameOf('users', names), 'users');
  assert.equal(nameOf('odd%41name', names), 'odd%41name');
  assert.equal(nameOf('with%20space', names), 'with space');
  assert.equal(nameOf('unknown%20table', names), 'unknown table');
  assert.equal(nameOf('50%', names), '50%');
});

test('every identifier goes into a route percent-encoded', () => {
  assert.equal(paths.table('db 1', 'pub/lic', 'a?b'), '/data/db%201/schema/pub%2Flic/tables/a%3Fb/browse');
  assert.equal(paths.trigger('t#1', 'logs'), '/events/data/t%231/logs');
});

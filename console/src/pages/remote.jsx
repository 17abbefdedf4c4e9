import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';

import { REMOTE_SCHEMAS } from '../fixtures.js';
import { nameOf, paths } from '../paths.js';
import { T } from '../store.js';
import { Field, Notifications, Tabs, useOnOpen, useRequest } from './common.jsx';

const TABS = ['details', 'modify', 'permissions', 'relationships'];

export function RemoteSchemasList() {
  return (
    <section className="content wide">
      <h1>Remote Schemas</h1>
      <ul className="cards">
        {REMOTE_SCHEMAS.map((r) => (
          <li key={r.name}>
            <Link to={paths.remoteSchema(r.name)}>{r.name}</Link>
            <span className="muted">{r.url}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function RemoteSchemaPage() {
  const params = useParams();
  const name = nameOf(params.remote, REMOTE_SCHEMAS.map((r) => r.name));
  const remote = REMOTE_SCHEMAS.find((r) => r.name === name);
  const request = useRequest();
  const [header, setHeader] = useState('');
  useOnOpen({ type: T.VIEW_REMOTE, payload: name }, name);
  if (!remote) return <p className="empty">No remote schema here.</p>;
  const save = (event) => {
    event.preventDefault();
    request({ type: T.SAVE_HEADERS, payload: { name, headers: [{ name: 'Authorization', value: header }] } }, 'Headers saved');
  };
  return (
    <section className="content wide">
      <Notifications />
      <h1>{remote.name}</h1>
      <Tabs tabs={TABS} to={(tab) => paths.remoteSchema(name, tab)} />
      {params.tab === 'details' && (
        <dl className="facts">
          <dt>GraphQL server URL</dt>
          <dd>
            <code>{remote.url}</code>
          </dd>
        </dl>
      )}
      {params.tab === 'modify' && (
        <form className="form" onSubmit={save}>
          <Field label="Authorization header">
            <input aria-label="authorization header" value={header} onChange={(e) => setHeader(e.target.value)} />
          </Field>
          <button type="submit">Save headers</button>
        </form>
      )}
      {params.tab !== 'details' && params.tab !== 'modify' && <p className="empty">This tab is a placeholder in the demo.</p>}
    </section>
  );
}

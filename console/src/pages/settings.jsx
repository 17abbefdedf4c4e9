import { useState } from 'react';
import { NavLink, useParams } from 'react-router-dom';

import { paths } from '../paths.js';
import { T } from '../store.js';
import { Field, Notifications, useOnOpen, useRequest } from './common.jsx';

const PAGES = [
  ['metadata-actions', 'Metadata Actions'],
  ['multiple-admin-secrets', 'Admin Secrets'],
  ['about', 'About'],
];

export function SettingsPage() {
  const { page } = useParams();
  const request = useRequest();
  const [secret, setSecret] = useState('');
  useOnOpen({ type: 'Metadata/LOAD_INCONSISTENT_OBJECTS', payload: { page } }, page);
  return (
    <div className="with-sidebar">
      <aside className="sidebar">
        <ul className="tree">
          {PAGES.map(([slug, label]) => (
            <li key={slug}>
              <NavLink to={paths.settings(slug)}>{label}</NavLink>
            </li>
          ))}
          <li>
            <NavLink to={paths.reports()}>What this console reports</NavLink>
          </li>
        </ul>
      </aside>
      <section className="content">
        <Notifications />
        {page === 'metadata-actions' && (
          <>
            <h1>Metadata Actions</h1>
            <button type="button" onClick={() => request({ type: T.EXPORT_METADATA, payload: { format: 'json' } }, 'Metadata exported')}>
              Export metadata
            </button>
          </>
        )}
        {page === 'multiple-admin-secrets' && (
          <form
            className="form"
            onSubmit={(event) => {
              event.preventDefault();
              request({ type: T.SET_ADMIN_SECRET, payload: { secret } }, 'Admin secret saved');
            }}
          >
            <h1>Admin Secrets</h1>
            <Field label="New admin secret">
              <input aria-label="admin secret" type="password" value={secret} onChange={(e) => setSecret(e.target.value)} />
            </Field>
            <button type="submit">Save</button>
          </form>
        )}
        {page === 'about' && (
          <>
            <h1>About</h1>
            <p>A demo console served by console-proxy. Usage telemetry from this page goes to the proxy, which keeps only the action name and an anonymized route.</p>
          </>
        )}
      </section>
    </div>
  );
}

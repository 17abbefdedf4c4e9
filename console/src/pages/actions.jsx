import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';

import { ACTIONS } from '../fixtures.js';
import { nameOf, paths } from '../paths.js';
import { T } from '../store.js';
import { Field, Notifications, Tabs, useOnOpen, useRequest } from './common.jsx';

const TABS = ['modify', 'relationships', 'codegen', 'permissions'];

export function ActionsList() {
  return (
    <section className="content wide">
      <h1>Actions</h1>
      <ul className="cards">
        {ACTIONS.map((a) => (
          <li key={a.name}>
            <Link to={paths.action(a.name)}>{a.name}</Link>
            <span className="muted">{a.kind}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ActionPage() {
  const params = useParams();
  const name = nameOf(params.action, ACTIONS.map((a) => a.name));
  const action = ACTIONS.find((a) => a.name === name);
  const request = useRequest();
  const [definition, setDefinition] = useState(`type Mutation {\n  ${name}(input: String!): String\n}`);
  useOnOpen({ type: T.SET_ACTION, payload: name }, name);
  if (!action) return <p className="empty">No action here.</p>;
  const save = (event) => {
    event.preventDefault();
    request({ type: T.SAVE_ACTION, payload: { name, definition, handler: action.handler } }, 'Action saved');
  };
  return (
    <section className="content wide">
      <Notifications />
      <h1>{action.name}</h1>
      <Tabs tabs={TABS} to={(tab) => paths.action(name, tab)} />
      {params.tab === 'modify' ? (
        <form className="form" onSubmit={save}>
          <Field label="Action definition">
            <textarea aria-label="action definition" rows={5} value={definition} onChange={(e) => setDefinition(e.target.value)} />
          </Field>
          <Field label="Handler">
            <code>{action.handler}</code>
          </Field>
          <button type="submit">Save action</button>
        </form>
      ) : (
        <p className="empty">This tab is a placeholder in the demo.</p>
      )}
    </section>
  );
}

import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';

import { EVENT_TRIGGERS } from '../fixtures.js';
import { nameOf, paths } from '../paths.js';
import { T } from '../store.js';
import { Notifications, Tabs, useOnOpen, useRequest } from './common.jsx';

const TABS = ['modify', 'pending', 'processed', 'logs'];

export function TriggersList() {
  return (
    <section className="content wide">
      <h1>Event Triggers</h1>
      <table className="grid">
        <thead>
          <tr>
            <th>Trigger</th>
            <th>Table</th>
            <th>Operations</th>
          </tr>
        </thead>
        <tbody>
          {EVENT_TRIGGERS.map((t) => (
            <tr key={t.name}>
              <td>
                <Link to={paths.trigger(t.name)}>{t.name}</Link>
              </td>
              <td>
                {t.source} › {t.table}
              </td>
              <td>{t.operations.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function TriggerPage() {
  const params = useParams();
  const name = nameOf(params.trigger, EVENT_TRIGGERS.map((t) => t.name));
  const trigger = EVENT_TRIGGERS.find((t) => t.name === name);
  const request = useRequest();
  const [eventId, setEventId] = useState('');
  useOnOpen({ type: T.SET_TRIGGER, payload: name }, name);
  if (!trigger) return <p className="empty">No trigger here.</p>;
  const redeliver = (event) => {
    event.preventDefault();
    request({ type: T.REDELIVER, payload: { trigger: name, eventId } }, 'Event redelivered');
  };
  return (
    <section className="content wide">
      <Notifications />
      <h1>{trigger.name}</h1>
      <Tabs tabs={TABS} to={(tab) => paths.trigger(name, tab)} />
      {params.tab === 'modify' && (
        <dl className="facts">
          <dt>Table</dt>
          <dd>
            {trigger.source} › {trigger.table}
          </dd>
          <dt>Webhook</dt>
          <dd>
            <code>{trigger.webhook}</code>
          </dd>
        </dl>
      )}
      {params.tab === 'logs' && (
        <form className="filter" onSubmit={redeliver}>
          <input aria-label="event id" placeholder="event id" value={eventId} onChange={(e) => setEventId(e.target.value)} />
          <button type="submit">Redeliver</button>
        </form>
      )}
      {params.tab !== 'modify' && params.tab !== 'logs' && <p className="empty">No events.</p>}
    </section>
  );
}

import { useEffect, useState } from 'react';

const COLUMNS = ['timestamp', 'event_type', 'url', 'console_mode', 'server_uuid', 'cli_uuid', 'server_version'];

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

// "What this console reports": the proxy's own record of what leaves (GET /_telemetry/v1/recent),
// next to what this page's client has captured and sent. Nothing here comes from the page itself.
export function ReportsPage({ telemetry }) {
  const [status, setStatus] = useState(null);
  const [events, setEvents] = useState(null);
  const [stats, setStats] = useState(telemetry.stats());
  const [error, setError] = useState(null);

  const refresh = async () => {
    setError(null);
    setStats(await telemetry.flush());
    try {
      const [s, recent] = await Promise.all([getJson('/_telemetry/v1/status'), getJson('/_telemetry/v1/recent')]);
      setStatus(s);
      setEvents(Array.isArray(recent) ? recent : recent.events || []);
    } catch (e) {
      setError(String(e.message || e));
    }
  };

  useEffect(() => {
    refresh();
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  if (status !== null && !status.enabled) {
    return (
      <section className="content wide reports">
        <h1>Telemetry is off</h1>
        <p data-testid="telemetry-off">
          This console reports nothing: console-proxy keeps nothing and sends nothing, and this page's client sends
          no events. It was turned off by <code data-testid="decided-by">{status.decided_by}</code>.
        </p>
        <p>
          To turn it on: <span data-testid="how-to-turn-on">{status.how_to_turn_on}</span>
        </p>
        <div className="summary">
          <div>
            <strong>Telemetry</strong>
            <span data-testid="telemetry-enabled">off</span>
          </div>
          <div>
            <strong>Mode</strong>
            <span>{status.mode}</span>
          </div>
        </div>
      </section>
    );
  }

  const identity = (status && status.identity) || {};
  const attached = identity.server_uuid
    ? `server ${identity.server_uuid}, from ${identity.server_uuid_from}`
    : identity.cli_uuid
      ? `CLI ${identity.cli_uuid}, from ${identity.cli_uuid_from}`
      : 'none: no --server-uuid or --hasura-endpoint, so events carry no installation ID';
  return (
    <section className="content wide reports">
      <h1>What this console reports</h1>
      <p>
        This console reports which actions you take and on which page, and nothing else. console-proxy replaces every
        name in the page's address (databases, schemas, tables, triggers, actions…) with a placeholder, drops query
        strings and action payloads, and attaches the installation's ID shown below. Below are the last events exactly
        as they leave (or, in local mode, as they are kept).
      </p>
      <div className="summary">
        <div>
          <strong>Telemetry</strong>
          <span data-testid="telemetry-enabled">{status === null ? '…' : 'on'}</span>
        </div>
        <div>
          <strong>Mode</strong>
          <span>{status === null ? '…' : status.mode}</span>
        </div>
        <div>
          <strong>Uploads</strong>
          <span>{status === null ? '…' : status.upload ? 'to the collector' : 'kept on this machine'}</span>
        </div>
        <div>
          <strong>Installation ID</strong>
          <span data-testid="attached-id">{status === null ? '…' : attached}</span>
        </div>
        <div>
          <strong>This page</strong>
          <span data-testid="client-stats">
            {stats.captured} captured · {stats.sent} sent · {stats.buffered} waiting · {stats.dropped} dropped
          </span>
        </div>
        <button type="button" onClick={refresh}>
          Refresh
        </button>
      </div>
      {error && <p className="error">{error}</p>}
      {events !== null && events.length === 0 && <p className="empty">Nothing has been reported yet.</p>}
      {events !== null && events.length > 0 && (
        <div className="table-scroll">
          <table className="grid recent" data-testid="recent">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {[...events].reverse().map((e, i) => (
                <tr key={e.event_id || i}>
                  {COLUMNS.map((c) => (
                    <td key={c}>
                      <code>{e[c] === null || e[c] === undefined ? 'null' : String(e[c])}</code>
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

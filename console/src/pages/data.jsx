import { useState } from 'react';
import { useDispatch } from 'react-redux';
import { Link, NavLink, Outlet, useParams, useSearchParams } from 'react-router-dom';

import { DATABASES, findTable } from '../fixtures.js';
import { nameOf, paths } from '../paths.js';
import { T } from '../store.js';
import { Field, Notifications, Tabs, useOnOpen, useRequest } from './common.jsx';

const TABLE_TABS = ['browse', 'insert', 'modify', 'relationships', 'permissions'];

function useDataParams() {
  const params = useParams();
  const source = nameOf(params.source, DATABASES.map((d) => d.name));
  const db = DATABASES.find((d) => d.name === source);
  const schema = nameOf(params.schema, db ? db.schemas.map((s) => s.name) : []);
  const sc = db && db.schemas.find((s) => s.name === schema);
  const table = nameOf(params.table, sc ? sc.tables.map((t) => t.name) : []);
  return { source, schema, table, tab: params.tab, db, sc };
}

export function DataLayout() {
  return (
    <div className="with-sidebar">
      <aside className="sidebar">
        <div className="sidebar-head">
          <Link to={paths.data()}>Data Manager</Link>
          <Link to={paths.sql()} className="small-link">
            SQL
          </Link>
        </div>
        <ul className="tree">
          {DATABASES.map((db) => (
            <li key={db.name}>
              <NavLink to={paths.database(db.name)} end>
                {db.name}
              </NavLink>
              <ul>
                {db.schemas.map((sc) => (
                  <li key={sc.name}>
                    <NavLink to={paths.schema(db.name, sc.name)} end>
                      ▸ {sc.name}
                    </NavLink>
                    <ul>
                      {sc.tables.map((t) => (
                        <li key={t.name}>
                          <NavLink to={paths.table(db.name, sc.name, t.name)}>{t.name}</NavLink>
                        </li>
                      ))}
                    </ul>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      </aside>
      <section className="content">
        <Notifications />
        <Outlet />
      </section>
    </div>
  );
}

export function DataHome() {
  return (
    <>
      <h1>Data Manager</h1>
      <table className="grid">
        <thead>
          <tr>
            <th>Database</th>
            <th>Driver</th>
            <th>Schemas</th>
          </tr>
        </thead>
        <tbody>
          {DATABASES.map((db) => (
            <tr key={db.name}>
              <td>
                <Link to={paths.database(db.name)}>{db.name}</Link>
              </td>
              <td>{db.kind}</td>
              <td>{db.schemas.length}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

export function DatabasePage() {
  const { source, db } = useDataParams();
  useOnOpen({ type: T.SET_SOURCE, payload: source }, source);
  if (!db) return <p className="empty">No database here.</p>;
  return (
    <>
      <h1>{db.name}</h1>
      <p className="muted">{db.kind}</p>
      <h2>Schemas</h2>
      <ul className="cards">
        {db.schemas.map((sc) => (
          <li key={sc.name}>
            <Link to={paths.schema(db.name, sc.name)}>{sc.name}</Link>
            <span className="muted">{sc.tables.length} tables</span>
          </li>
        ))}
      </ul>
    </>
  );
}

export function SchemaPage() {
  const { source, schema, sc } = useDataParams();
  useOnOpen({ type: T.SET_SCHEMA, payload: { source, schema } }, `${source}/${schema}`);
  if (!sc) return <p className="empty">No schema here.</p>;
  return (
    <>
      <h1>
        {source} › {schema}
      </h1>
      <table className="grid">
        <thead>
          <tr>
            <th>Table</th>
            <th>Columns</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {sc.tables.map((t) => (
            <tr key={t.name}>
              <td>
                <Link to={paths.table(source, schema, t.name)}>{t.name}</Link>
              </td>
              <td>{t.columns.length}</td>
              <td>
                <Link to={paths.table(source, schema, t.name, 'modify')}>Modify</Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

export function TablePage() {
  const { source, schema, table, tab } = useDataParams();
  const t = findTable(source, schema, table);
  useOnOpen({ type: T.SET_TABLE, payload: { source, schema, table } }, `${source}/${schema}/${table}`);
  if (!t) return <p className="empty">No table here.</p>;
  return (
    <>
      <h1>
        {table} <span className="muted">{schema} · {source}</span>
      </h1>
      <Tabs tabs={TABLE_TABS} to={(name) => paths.table(source, schema, table, name)} />
      {tab === 'browse' && <Browse table={t} />}
      {tab === 'modify' && <Modify table={t} />}
      {tab !== 'browse' && tab !== 'modify' && <p className="empty">This tab is a placeholder in the demo.</p>}
    </>
  );
}

function Browse({ table }) {
  const dispatch = useDispatch();
  const [search, setSearch] = useSearchParams();
  const [column, op, value] = (search.get('filter') || `${table.columns[0]};$eq;`).split(';');
  const [draft, setDraft] = useState(value || '');
  const [draftColumn, setDraftColumn] = useState(column);
  const i = table.columns.indexOf(column);
  const rows = value && i >= 0 ? table.rows.filter((r) => String(r[i]).includes(value)) : table.rows;
  const run = (event) => {
    event.preventDefault();
    dispatch({ type: T.SET_QUERY_OPTS, payload: { where: { [draftColumn]: { $eq: draft } }, limit: 10 } });
    // Like the Hasura console: the filter (a row value) goes into the query string.
    setSearch({ filter: `${draftColumn};$eq;${draft}`, sort: `${table.columns[0]};asc` });
  };
  return (
    <>
      <form className="filter" onSubmit={run}>
        <select aria-label="column" value={draftColumn} onChange={(e) => setDraftColumn(e.target.value)}>
          {table.columns.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
        <span className="op">{op || '$eq'}</span>
        <input aria-label="value" placeholder="-- value --" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Run query</button>
      </form>
      <table className="grid rows">
        <thead>
          <tr>
            {table.columns.map((c) => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r[0]}>
              {r.map((cell, j) => (
                <td key={j}>{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Modify({ table }) {
  const request = useRequest();
  const [column, setColumn] = useState(table.columns[table.columns.length - 1]);
  const [name, setName] = useState('');
  const save = (event) => {
    event.preventDefault();
    request({ type: T.SAVE_COLUMN, payload: { column, newName: name } }, 'Column saved');
  };
  return (
    <form className="form" onSubmit={save}>
      <h2>Columns</h2>
      <ul className="columns">
        {table.columns.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <Field label="Rename column">
        <select aria-label="column to rename" value={column} onChange={(e) => setColumn(e.target.value)}>
          {table.columns.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
      </Field>
      <Field label="New name">
        <input aria-label="new column name" value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <button type="submit">Save</button>
    </form>
  );
}

export function SqlPage() {
  const request = useRequest();
  const [sql, setSql] = useState('SELECT * FROM "sales/eu"."invoices 2026" LIMIT 10;');
  const run = (event) => {
    event.preventDefault();
    request({ type: T.RUN_SQL, payload: { sql, source: 'prod db' } }, 'SQL executed');
  };
  return (
    <form className="form" onSubmit={run}>
      <h1>Raw SQL</h1>
      <textarea aria-label="sql" rows={6} value={sql} onChange={(e) => setSql(e.target.value)} />
      <button type="submit">Run!</button>
    </form>
  );
}

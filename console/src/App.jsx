import { useEffect } from 'react';
import { useDispatch } from 'react-redux';
import { NavLink, Navigate, Route, Routes, useLocation, useNavigationType } from 'react-router-dom';

import { ActionPage, ActionsList } from './pages/actions.jsx';
import { DataHome, DataLayout, DatabasePage, SchemaPage, SqlPage, TablePage } from './pages/data.jsx';
import { RemoteSchemaPage, RemoteSchemasList } from './pages/remote.jsx';
import { ReportsPage } from './pages/reports.jsx';
import { SettingsPage } from './pages/settings.jsx';
import { TriggerPage, TriggersList } from './pages/events.jsx';
import { paths } from './paths.js';
import { T } from './store.js';

// What connected-react-router did for the Hasura console: one action per navigation, carrying
// the new location (with the console's prefix, as the address bar shows it).
function RouterSync({ basename }) {
  const location = useLocation();
  const navigationType = useNavigationType();
  const dispatch = useDispatch();
  useEffect(() => {
    dispatch({
      type: T.LOCATION_CHANGE,
      payload: {
        location: { pathname: basename + location.pathname, search: location.search, hash: location.hash },
        action: navigationType,
      },
    });
  }, [location.key]); // eslint-disable-line react-hooks/exhaustive-deps
  return null;
}

const SECTIONS = [
  ['Data', paths.data()],
  ['Actions', paths.actions()],
  ['Remote Schemas', paths.remoteSchemas()],
  ['Events', paths.triggers()],
  ['Settings', paths.settings()],
];

export function App({ basename, telemetry }) {
  const section = (to) => '/' + to.split('/')[1];
  const location = useLocation();
  return (
    <div className="console">
      <RouterSync basename={basename} />
      <header className="topbar">
        <span className="brand">demo console</span>
        <nav>
          {SECTIONS.map(([label, to]) => (
            <NavLink
              key={label}
              to={to}
              className={() => (location.pathname.startsWith(section(to)) && !location.pathname.startsWith('/settings/telemetry') ? 'active' : '')}
            >
              {label}
            </NavLink>
          ))}
        </nav>
        <NavLink to={paths.reports()} className="reports-link">
          What this console reports
        </NavLink>
      </header>
      <main>
        <Routes>
          <Route path="/" element={<Navigate to={paths.data()} replace />} />
          <Route path="/data" element={<DataLayout />}>
            <Route index element={<DataHome />} />
            <Route path="sql" element={<SqlPage />} />
            <Route path=":source" element={<DatabasePage />} />
            <Route path=":source/schema/:schema" element={<SchemaPage />} />
            <Route path=":source/schema/:schema/tables/:table/:tab" element={<TablePage />} />
          </Route>
          <Route path="/events/data/manage" element={<TriggersList />} />
          <Route path="/events/data/:trigger/:tab" element={<TriggerPage />} />
          <Route path="/actions/manage/actions" element={<ActionsList />} />
          <Route path="/actions/manage/:action/:tab" element={<ActionPage />} />
          <Route path="/remote-schemas/manage/schemas" element={<RemoteSchemasList />} />
          <Route path="/remote-schemas/manage/:remote/:tab" element={<RemoteSchemaPage />} />
          <Route path="/settings/telemetry" element={<ReportsPage telemetry={telemetry} />} />
          <Route path="/settings/:page" element={<SettingsPage />} />
          <Route path="*" element={<p className="empty">Nothing here.</p>} />
        </Routes>
      </main>
    </div>
  );
}

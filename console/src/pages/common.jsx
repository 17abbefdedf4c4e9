import { useEffect } from 'react';
import { useDispatch, useSelector } from 'react-redux';
import { NavLink } from 'react-router-dom';

import { T } from '../store.js';

// Dispatch `action` when a page opens or its key changes, as the console's pages fetch on mount.
export function useOnOpen(action, key) {
  const dispatch = useDispatch();
  useEffect(() => {
    dispatch(action);
  }, [key]); // eslint-disable-line react-hooks/exhaustive-deps
}

// A metadata call as the Hasura console makes it: request bookkeeping, the action, a notification.
// The payloads carry what a person typed; the proxy must never let any of it through.
export function useRequest() {
  const dispatch = useDispatch();
  return (action, title) => {
    dispatch({ type: T.ONGOING_REQUEST, payload: { url: '/v1/metadata', body: action.payload } });
    dispatch(action);
    dispatch({ type: T.DONE_REQUEST, payload: { ok: true } });
    dispatch({ type: T.SHOW_NOTIFICATION, payload: { title, message: JSON.stringify(action.payload) } });
  };
}

export function Tabs({ tabs, to }) {
  return (
    <nav className="tabs">
      {tabs.map((tab) => (
        <NavLink key={tab} to={to(tab)} className={({ isActive }) => (isActive ? 'tab active' : 'tab')}>
          {tab[0].toUpperCase() + tab.slice(1)}
        </NavLink>
      ))}
    </nav>
  );
}

export function Notifications() {
  const notifications = useSelector((s) => s.app.notifications);
  if (notifications.length === 0) return null;
  return <div className="notification">{notifications[notifications.length - 1]}</div>;
}

export function Field({ label, children }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

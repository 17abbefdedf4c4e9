import { applyMiddleware, combineReducers, createStore } from 'redux';

import { createTelemetryMiddleware } from '../../static/console-telemetry.js';

// Action types follow the Hasura console's own names where it had one.
export const T = {
  LOCATION_CHANGE: '@@router/LOCATION_CHANGE',
  ONGOING_REQUEST: 'App/ONGOING_REQUEST',
  DONE_REQUEST: 'App/DONE_REQUEST',
  SHOW_NOTIFICATION: 'RNS_SHOW_NOTIFICATION',
  SET_SOURCE: 'Data/UPDATE_CURRENT_DATA_SOURCE',
  SET_SCHEMA: 'Data/UPDATE_CURRENT_SCHEMA',
  SET_TABLE: 'Data/SET_TABLE',
  SET_QUERY_OPTS: 'ViewTable/V_SET_QUERY_OPTS',
  SAVE_COLUMN: 'ModifyTable/SAVE_COLUMN_EDIT',
  RUN_SQL: 'RawSQL/MAKING_REQUEST',
  SET_TRIGGER: 'Events/SET_TRIGGER',
  REDELIVER: 'Events/REDELIVER_EVENT',
  SET_ACTION: 'Actions/SET_ACTION',
  SAVE_ACTION: 'Actions/SAVE_ACTION_DEFINITION',
  VIEW_REMOTE: 'RemoteSchemas/VIEW_REMOTE_SCHEMA',
  SAVE_HEADERS: 'RemoteSchemas/SAVE_HEADERS',
  SET_ADMIN_SECRET: 'Main/UPDATE_ADMIN_SECRET',
  EXPORT_METADATA: 'Metadata/EXPORT_METADATA',
};

const initialData = { source: null, schema: null, table: null, filter: null, renamed: {}, lastSql: null };

function data(state = initialData, action) {
  switch (action.type) {
    case T.SET_SOURCE:
      return { ...state, source: action.payload };
    case T.SET_SCHEMA:
      return { ...state, schema: action.payload };
    case T.SET_TABLE:
      return { ...state, table: action.payload, filter: null };
    case T.SET_QUERY_OPTS:
      return { ...state, filter: action.payload };
    case T.SAVE_COLUMN:
      return { ...state, renamed: { ...state.renamed, [action.payload.column]: action.payload.newName } };
    case T.RUN_SQL:
      return { ...state, lastSql: action.payload.sql };
    default:
      return state;
  }
}

function app(state = { ongoing: 0, notifications: [], adminSecretSet: false, location: null }, action) {
  switch (action.type) {
    case T.LOCATION_CHANGE:
      return { ...state, location: action.payload.location.pathname };
    case T.ONGOING_REQUEST:
      return { ...state, ongoing: state.ongoing + 1 };
    case T.DONE_REQUEST:
      return { ...state, ongoing: Math.max(0, state.ongoing - 1) };
    case T.SHOW_NOTIFICATION:
      return { ...state, notifications: [...state.notifications.slice(-2), action.payload.title] };
    case T.SET_ADMIN_SECRET:
      return { ...state, adminSecretSet: true };
    default:
      return state;
  }
}

function current(state = { trigger: null, action: null, remoteSchema: null, saved: 0 }, action) {
  switch (action.type) {
    case T.SET_TRIGGER:
      return { ...state, trigger: action.payload };
    case T.SET_ACTION:
      return { ...state, action: action.payload };
    case T.VIEW_REMOTE:
      return { ...state, remoteSchema: action.payload };
    case T.SAVE_ACTION:
    case T.SAVE_HEADERS:
    case T.REDELIVER:
    case T.EXPORT_METADATA:
      return { ...state, saved: state.saved + 1 };
    default:
      return state;
  }
}

export function makeStore() {
  // Telemetry goes to this page's own origin, where console-proxy serves it.
  const telemetry = createTelemetryMiddleware({ batchSize: 20, flushInterval: 3000 });
  const store = createStore(combineReducers({ data, app, current }), applyMiddleware(telemetry));
  return { store, telemetry };
}

// Every identifier goes into a route percent-encoded, as the Hasura console does.
const e = encodeURIComponent;

export const paths = {
  data: () => '/data',
  sql: () => '/data/sql',
  database: (source) => `/data/${e(source)}`,
  schema: (source, schema) => `/data/${e(source)}/schema/${e(schema)}`,
  table: (source, schema, table, tab = 'browse') => `/data/${e(source)}/schema/${e(schema)}/tables/${e(table)}/${tab}`,
  triggers: () => '/events/data/manage',
  trigger: (name, tab = 'modify') => `/events/data/${e(name)}/${tab}`,
  actions: () => '/actions/manage/actions',
  action: (name, tab = 'modify') => `/actions/manage/${e(name)}/${tab}`,
  remoteSchemas: () => '/remote-schemas/manage/schemas',
  remoteSchema: (name, tab = 'details') => `/remote-schemas/manage/${e(name)}/${tab}`,
  settings: (page = 'metadata-actions') => `/settings/${page}`,
  reports: () => '/settings/telemetry',
};

// A route parameter back to the name it came from, whether or not the router decoded it: a known name is
// taken as it is (a name may itself hold a '%'), anything else is decoded when it can be.
export function nameOf(value, names) {
  if (value === undefined || names.includes(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

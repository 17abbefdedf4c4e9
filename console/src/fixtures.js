// What the demo console pretends its Hasura server holds. Names are chosen to be awkward:
// spaces, slashes, non-ASCII letters, and names that equal the console's own route keywords.
export const DATABASES = [
  {
    name: 'prod db',
    kind: 'postgres',
    schemas: [
      {
        name: 'public',
        tables: [
          {
            name: 'usuários',
            columns: ['id', 'e-mail', 'nome', 'criado_em'],
            rows: [
              [1, 'ana@exemplo.com.br', 'Ana Luísa', '2026-03-02'],
              [2, 'joao@exemplo.com.br', 'João Grilo', '2026-05-17'],
              [3, 'chico@exemplo.com.br', 'Chicó', '2026-09-30'],
            ],
          },
          {
            name: 'pedidos',
            columns: ['id', 'usuario_id', 'total'],
            rows: [
              [10, 1, '120.00'],
              [11, 3, '42.50'],
            ],
          },
        ],
      },
      {
        name: 'sales/eu',
        tables: [
          {
            name: 'invoices 2026',
            columns: ['number', 'customer', 'amount'],
            rows: [
              ['EU-0001', 'Müller GmbH', '990.00'],
              ['EU-0002', 'Société Générale', '15.20'],
            ],
          },
          { name: 'straße', columns: ['id', 'name'], rows: [[1, 'Königsallee']] },
        ],
      },
    ],
  },
  {
    name: 'default',
    kind: 'postgres',
    schemas: [
      {
        name: 'public',
        tables: [
          { name: 'users', columns: ['id', 'email'], rows: [[1, 'admin@example.com']] },
          { name: 'tables', columns: ['id', 'label'], rows: [[1, 'a table named tables']] },
        ],
      },
    ],
  },
  {
    name: 'manage',
    kind: 'mssql',
    schemas: [{ name: 'dbo', tables: [{ name: 'Kunden', columns: ['id'], rows: [[7]] }] }],
  },
];

export const EVENT_TRIGGERS = [
  { name: 'notify_usuário', source: 'prod db', table: 'usuários', operations: ['INSERT', 'UPDATE'], webhook: 'https://hooks.internal.example/notify' },
  { name: 'audit log', source: 'prod db', table: 'pedidos', operations: ['DELETE'], webhook: 'https://audit.internal.example/' },
];

export const ACTIONS = [
  { name: 'insertUser', kind: 'synchronous', handler: 'https://actions.internal.example/insert-user' },
  { name: 'créerCommande', kind: 'asynchronous', handler: 'https://actions.internal.example/commande' },
];

export const REMOTE_SCHEMAS = [
  { name: 'payments/v2', url: 'https://payments.internal.example/graphql' },
  { name: 'países', url: 'https://countries.internal.example/graphql' },
];

export function findTable(source, schema, table) {
  const db = DATABASES.find((d) => d.name === source);
  const sc = db && db.schemas.find((s) => s.name === schema);
  return sc ? sc.tables.find((t) => t.name === table) : undefined;
}

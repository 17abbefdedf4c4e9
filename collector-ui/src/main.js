// The collector's dashboard: fetches v1/dashboard (figures already thresholded by the collector) and draws them.
// Text goes in with textContent only: the page never builds HTML from data.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement,
  Tooltip, Legend);

const COLORS = ['#1f6feb', '#d9480f', '#2f9e44', '#9c36b5', '#e8590c', '#0c8599'];
const number = new Intl.NumberFormat('en');

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

function empty(canvasId, text) {
  const canvas = document.getElementById(canvasId);
  canvas.parentElement.replaceChildren(el('div', text));
  canvas.parentElement.firstChild.className = 'empty';
}

// A canvas says nothing to a screen reader (or to a search of the page): each chart's figures are also listed
// in text, visually hidden, right after it.
function described(canvasId, lines) {
  const list = el('ul');
  list.className = 'figures';
  lines.forEach((line) => list.appendChild(el('li', line)));
  document.getElementById(canvasId).parentElement.after(list);
}

function bars(canvasId, labels, values, label) {
  if (!labels.length) {
    empty(canvasId, 'Nothing with enough installations behind it yet.');
    return;
  }
  described(canvasId, labels.map((name, i) => `${name}: ${number.format(values[i])} ${label}`));
  const canvas = document.getElementById(canvasId);
  // As tall as its rows need: a bar a row, every label written out beside its bar.
  canvas.parentElement.style.height = `${Math.max(120, labels.length * 30 + 60)}px`;
  new Chart(canvas, {
    type: 'bar',
    data: { labels, datasets: [{ label, data: values, backgroundColor: COLORS[0], maxBarThickness: 22 }] },
    options: {
      indexAxis: 'y', maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, title: { display: true, text: label } }, y: { ticks: { autoSkip: false } } },
    },
  });
}

function byDay(data) {
  if (!data.days.length) {
    empty('by-day', 'No day with enough installations behind it yet.');
    return;
  }
  described('by-day', data.series.flatMap((s) => data.days.map((day, i) => (
    s.events[i] === null ? null : `${s.topic} on ${day}: ${number.format(s.events[i])} events`)).filter(Boolean)));
  new Chart(document.getElementById('by-day'), {
    type: 'bar',
    data: {
      labels: data.days,
      datasets: data.series.map((s, i) => ({
        label: s.topic, data: s.events, backgroundColor: COLORS[i % COLORS.length], maxBarThickness: 36,
      })),
    },
    options: {
      maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: 'top', align: 'start' } },
      scales: { y: { beginAtZero: true, title: { display: true, text: 'events' } } },
    },
  });
}

function table(containerId, head, rows) {
  const container = document.getElementById(containerId);
  if (!rows.length) {
    container.replaceChildren(el('div', 'Nothing with enough installations behind it yet.'));
    container.firstChild.className = 'empty';
    return;
  }
  const t = el('table');
  const tr = el('tr');
  head.forEach((h) => tr.appendChild(el('th', h)));
  t.appendChild(el('thead')).appendChild(tr);
  const body = t.appendChild(el('tbody'));
  rows.forEach((cells) => {
    const row = body.appendChild(el('tr'));
    cells.forEach((c) => row.appendChild(el('td', c)));
  });
  container.replaceChildren(t);
}

function withheld(data) {
  const lines = [];
  const add = (count, one, many) => {
    if (count) lines.push(`${number.format(count)} ${count === 1 ? one : many}`);
  };
  add(data.events_by_day.withheld, 'day of a topic in the events chart', 'days of a topic in the events chart');
  add(data.top_pages.withheld, 'page', 'pages');
  add(data.top_actions.withheld, 'action', 'actions');
  add(data.server_versions.withheld, 'server version', 'server versions');
  add(data.cli_versions.withheld, 'CLI version', 'CLI versions');
  add(data.cli_commands.withheld, 'CLI command', 'CLI commands');
  add(data.cli_commands.rates_withheld, 'error rate of a CLI command (too few installations had errors)',
    'error rates of CLI commands (too few installations had errors)');
  add(data.server_counts.withheld, 'bucket of a server count', 'buckets of server counts');
  if (data.installations === null) lines.push('the number of installations');
  if (!lines.length) return;
  const list = document.getElementById('withheld-list');
  lines.forEach((line) => list.appendChild(el('li', `${line}: each seen by fewer than ${data.min_installations} installations`)));
  document.getElementById('withheld').hidden = false;
}

function render(data) {
  const installations = data.installations === null ? 'fewer than ' + data.min_installations
    : number.format(data.installations);
  document.getElementById('summary').textContent = `${installations} installations in the last ${data.window_days}`
    + ` days · every figure stands for at least ${data.min_installations} installations`;
  withheld(data);
  byDay(data.events_by_day);
  bars('pages', data.top_pages.rows.map((r) => r.url), data.top_pages.rows.map((r) => r.events), 'events');
  bars('actions', data.top_actions.rows.map((r) => r.action), data.top_actions.rows.map((r) => r.events), 'events');
  bars('server-versions', data.server_versions.rows.map((r) => r.version),
    data.server_versions.rows.map((r) => r.installations), 'installations');
  bars('cli-versions', data.cli_versions.rows.map((r) => r.version),
    data.cli_versions.rows.map((r) => r.installations), 'installations');
  table('commands', ['command', 'events', 'installations', 'errors'], data.cli_commands.rows.map((r) => [
    r.command, number.format(r.events), number.format(r.installations),
    r.error_rate === null ? 'withheld' : `${(r.error_rate * 100).toFixed(1)} %`,
  ]));
  const buckets = data.server_counts.buckets;
  table('server-counts', ['count', ...buckets], data.server_counts.metrics.map((m) => {
    const found = Object.fromEntries(m.buckets.map((b) => [b.bucket, b.installations]));
    return [m.name, ...buckets.map((b) => (b in found ? number.format(found[b]) : '–'))];
  }));
  document.body.dataset.ready = 'true';
}

fetch('v1/dashboard', { headers: { accept: 'application/json' } })
  .then((response) => {
    if (!response.ok) throw new Error(`the collector answered ${response.status}`);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    document.getElementById('summary').textContent = `The figures could not be loaded: ${error.message}.`;
    document.body.dataset.ready = 'error';
  });

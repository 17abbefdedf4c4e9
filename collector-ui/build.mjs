// Build the collector's dashboard into ../console_proxy/collector/ui/ (gitignored): dashboard.js, one ES module
// with the chart library inside (no CDN at run time), and index.html beside it. `npm run build` and
// `make collector-ui` run this.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here('../console_proxy/collector/ui/');

await mkdir(out, { recursive: true });
await build({
  entryPoints: [here('src/main.js')],
  outfile: `${out}dashboard.js`,
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(here('src/index.html'), `${out}index.html`);

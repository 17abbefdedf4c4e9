// Build the demo console into ../static/dist/ (gitignored): one ES module, main.js, with the
// styles inlined. `node build.mjs` is what `npm run build` and `make console` run.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

await build({
  entryPoints: [here('src/main.jsx')],
  outfile: here('../static/dist/main.js'),
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  loader: { '.css': 'text' },
  define: { 'process.env.NODE_ENV': '"production"' },
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
});

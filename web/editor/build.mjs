// Rebuilds the committed editor bundle and copies Pyodide beside it:
//   cd web/editor && npm ci && npm run build
// Output: web/static/vendor/editor.js (CodeMirror 6, Yjs, y-codemirror.next, y-protocols)
//         web/static/vendor/pyodide/ (the files a Web Worker needs to run Python offline)
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "static", "vendor");
mkdirSync(vendor, { recursive: true });

await build({
  entryPoints: [join(here, "entry.js")],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "eof",
  outfile: join(vendor, "editor.js"),
});

const pyodide = join(here, "node_modules", "pyodide");
const target = join(vendor, "pyodide");
rmSync(target, { recursive: true, force: true });
mkdirSync(target);
const files = ["pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json", "LICENSE"];
for (const name of files) {
  try {
    copyFileSync(join(pyodide, name), join(target, name));
  } catch (error) {
    if (name !== "LICENSE") throw error;
  }
}
const version = JSON.parse(readFileSync(join(pyodide, "package.json"), "utf8")).version;
for (const name of ["editor.js"]) console.log(`${name}: ${statSync(join(vendor, name)).size} bytes`);
let total = 0;
for (const name of files) {
  try {
    total += statSync(join(target, name)).size;
  } catch {}
}
console.log(`pyodide ${version}: ${total} bytes`);

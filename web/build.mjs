// Bundles the dashboard into one folder of static files that edgeloop server embeds
// (cmake/embed_dashboard.cmake) and serves at /ui/:
//   node web/build.mjs --out DIR   ->  DIR/index.html, DIR/app.js, DIR/app.css, DIR/favicon.svg
// app.js is src/main.js with its modules and uPlot (npm, web/package-lock.json) in one ES
// module; app.css is src/style.css with uPlot's stylesheet. No source maps, no inline code:
// the server's Content-Security-Policy allows only these files.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const at = process.argv.indexOf("--out");
if (at < 0 || !process.argv[at + 1]) {
  console.error("usage: node web/build.mjs --out DIR");
  process.exit(2);
}
const out = process.argv[at + 1];
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const common = { bundle: true, minify: true, legalComments: "eof", logLevel: "warning" };
await build({
  ...common,
  entryPoints: [join(here, "src/main.js")],
  outfile: join(out, "app.js"),
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
});
await build({ ...common, entryPoints: [join(here, "src/style.css")], outfile: join(out, "app.css") });
for (const f of ["index.html", "favicon.svg"]) await copyFile(join(here, "src", f), join(out, f));

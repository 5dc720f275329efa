// Bundles src/index.ts (the single view) and src/compare.ts (the comparison), with the CSS they
// import, into ../ls_widget/static/widget.{js,css} and compare.{js,css}.
//   node build.mjs            one production build (minified, with a linked source map)
//   node build.mjs --watch    rebuild on change (development)
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes("--watch");

/** @type {import("esbuild").BuildOptions} */
const options = {
  entryPoints: {
    widget: path.join(here, "src", "index.ts"),
    compare: path.join(here, "src", "compare.ts"),
  },
  outdir: path.join(here, "..", "ls_widget", "static"),
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}

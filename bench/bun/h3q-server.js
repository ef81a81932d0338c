// bench/ only: the h3q Bun package (bindings/bun) serving a directory with
// the same fetch handler as server.js (Bun.serve with http3), so the two
// compare the HTTP/3 stacks under one JavaScript handler.
//   H3Q_LIB=build/libh3q.so bun bench/bun/h3q-server.js PORT CERT KEY ROOT [--files]
// With --files the package serves ROOT natively instead (its files option:
// libh3q's static handler, no JavaScript per request); with --memory every
// request gets ROOT/1k's bytes from memory, as server.js --memory does.
// Prints "h3q-bun listening on 127.0.0.1:PORT" once the server is up.
import { resolve, sep } from "node:path";
import { serve } from "../../bindings/bun/src/index.ts";

const [portArg, cert, key, rootArg, mode] = process.argv.slice(2);
if (!rootArg) {
  console.error("usage: bun h3q-server.js PORT CERT KEY ROOT");
  process.exit(2);
}
const root = resolve(rootArg);
const oneK = mode === "--memory" ? await Bun.file(resolve(root, "1k")).bytes() : null;

function notFound() {
  return new Response(null, { status: 404 });
}

const server = serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  cert,
  key,
  ...(mode === "--files" && { files: { "/": root } }),
  async fetch(req) {
    if (oneK) return new Response(oneK);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response(null, { status: 405 });
    }
    const path = decodeURIComponent(new URL(req.url).pathname);
    const full = resolve(root, "." + path);
    // Stay under root: resolve() has already folded any "..".
    if (!full.startsWith(root + sep)) return notFound();
    const file = Bun.file(full);
    if (!(await file.exists())) return notFound();
    return new Response(file);
  },
});
console.log(`h3q-bun listening on 127.0.0.1:${server.port}`);

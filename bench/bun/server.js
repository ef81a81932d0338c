// bench/ only: Bun's own HTTP/3 server serving a directory, with Bun's
// defaults except the loopback address. Bun.serve({http3: true}) also
// listens on TCP (HTTP/1.1 over TLS) on the same port number.
//   bun bench/bun/server.js PORT CERT KEY ROOT [--memory]
// With --memory every request gets ROOT/1k's bytes from memory (no file
// I/O per request): the HTTP/3 stack and the handler call alone.
// Prints "bun listening on 127.0.0.1:PORT" once the server is up.
import { resolve, sep } from "node:path";

const [portArg, cert, key, rootArg, mode] = process.argv.slice(2);
if (!rootArg) {
  console.error("usage: bun server.js PORT CERT KEY ROOT");
  process.exit(2);
}
const root = resolve(rootArg);
const oneK = mode === "--memory" ? await Bun.file(resolve(root, "1k")).bytes() : null;

function notFound() {
  return new Response(null, { status: 404 });
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  http3: true,
  tls: { cert: Bun.file(cert), key: Bun.file(key) },
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
console.log(`bun listening on ${server.hostname}:${server.port}`);

// The h3q package's example server:
//   bun bindings/bun/examples/serve.ts --port 4433 --cert cert.pem --key key.pem
// GET /hello answers "hello"; POST /echo streams the request body back.
import { parseArgs } from "node:util";
import { serve } from "../src/index.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "4433" },
    hostname: { type: "string", default: "127.0.0.1" },
    cert: { type: "string" },
    key: { type: "string" },
  },
});
if (!values.cert || !values.key) {
  console.error("usage: bun examples/serve.ts --port P --cert CERT --key KEY [--hostname H]");
  process.exit(2);
}

const server = serve({
  port: Number(values.port),
  hostname: values.hostname,
  cert: values.cert,
  key: values.key,
  routes: {
    "/hello": { GET: () => new Response("hello from h3q on Bun\n", { headers: { "content-type": "text/plain" } }) },
    "/echo": { POST: (req) => new Response(req.body, { headers: { "content-type": "application/octet-stream" } }) },
  },
  fetch: () => new Response("not found\n", { status: 404 }),
});
console.log(`h3q-bun listening on ${values.hostname}:${server.port}`);

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, async () => {
    await server.stop(true);
    process.exit(0);
  });
}

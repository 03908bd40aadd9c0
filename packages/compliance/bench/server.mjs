// The benchmark server: the same streaming sink on whichever runtime runs this file (Node, Deno or
// Bun), through that runtime's adapter. Prints {"port":N} once listening; stops on stdin EOF.
//
//   node server.mjs '{"tls":{"key":"...","cert":"..."}}'
//   deno run --allow-net=127.0.0.1 --allow-read --allow-env server.mjs '{...}'
//   bun server.mjs '{...}'
const runtime = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
// The adapter's built entry, by path (the suite does not depend on the adapters).
const { serve } = await import(`../../${runtime}/dist/index.js`);
const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const config = JSON.parse(args[0] ?? "{}");

let messages = 0;
let octets = 0;
const handler = {
  async handleDATAStream(_server, _session, _envelope, body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      octets += value.byteLength;
    }
    messages++;
    return undefined;
  },
};

const server = await serve(handler, {
  host: "127.0.0.1",
  port: 0,
  hostname: "bench.smtpkit.test",
  dataSizeLimit: 32 * 1024 * 1024,
  maxConnections: 10_000,
  ...(config.tls ? { tls: config.tls } : {}),
});
console.log(JSON.stringify({ runtime, port: server.port }));

// The parent closes our stdin to stop us.
const stdin = globalThis.Deno
  ? globalThis.Deno.stdin.readable
  : globalThis.Bun
    ? Bun.stdin.stream()
    : null;
if (stdin) {
  for await (const _ of stdin);
} else {
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on("end", resolve));
}
console.error(`${runtime}: ${messages} messages, ${octets} octets`);
await server.close({ timeout: 1000 });
if (globalThis.Deno) globalThis.Deno.exit(0);
else process.exit(0);

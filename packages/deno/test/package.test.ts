// The published entry: `import "@smtpkit/deno"` resolves through node_modules to dist/.
import { SMTP, serve } from "@smtpkit/deno";

Deno.test({
  name: "import '@smtpkit/deno' serves from the built dist/",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await serve({}, { port: 0, hostname: "dist.test" });
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const buffer = new Uint8Array(512);
      const n = (await conn.read(buffer)) ?? 0;
      const greeting = new TextDecoder().decode(buffer.subarray(0, n));
      conn.close();
      if (!greeting.startsWith("220 dist.test ")) throw new Error(`greeting: ${greeting}`);
      if (typeof SMTP !== "function") throw new Error("SMTP is not exported");
    } finally {
      await server.close({ timeout: 100 });
    }
  },
});

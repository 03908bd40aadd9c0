// The published entry: `import "@smtpkit/bun"` resolves through node_modules to dist/.
import { test } from "bun:test";
import { SMTP, serve } from "@smtpkit/bun";

test("import '@smtpkit/bun' serves from the built dist/", async () => {
  const server = await serve({}, { port: 0, hostname: "dist.test" });
  try {
    const greeting = await new Promise<string>((resolve, reject) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port: server.port,
        data: null,
        socket: {
          data(socket, chunk) {
            socket.terminate();
            resolve(new TextDecoder().decode(chunk));
          },
        },
      }).catch(reject);
    });
    if (!greeting.startsWith("220 dist.test ")) throw new Error(`greeting: ${greeting}`);
    if (typeof SMTP !== "function") throw new Error("SMTP is not exported");
  } finally {
    await server.close({ timeout: 100 });
  }
});

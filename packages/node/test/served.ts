// Servers and raw clients a test file starts, all stopped after each test.
import { afterEach } from "vitest";
import { type Handler, type SmtpServer, serve } from "../src/index.js";
import { LineClient } from "./helpers.js";

export function servedForEachTest() {
  const servers: SmtpServer[] = [];
  const clients: LineClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  });
  return {
    /** `serve()` on a free port as `mx.test`. */
    async start(handler: Handler, options: Parameters<typeof serve>[1] = {}) {
      const server = await serve(handler, { port: 0, hostname: "mx.test", ...options });
      servers.push(server);
      return server;
    },
    /** A raw line client, greeting not yet read. */
    async open(server: SmtpServer): Promise<LineClient> {
      const client = await LineClient.connect(server.port);
      clients.push(client);
      return client;
    },
  };
}

import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { serve as serveHttp } from "@hono/node-server";
import { authOptions, parseUsersFile } from "@smtpkit/auth";
import type { Authenticator } from "@smtpkit/core/server";
import { type SmtpServer, serve as serveSmtp } from "@smtpkit/node";
import { Faults } from "./faults.js";
import { createApi } from "./http-api.js";
import { Connections, inboxHandler } from "./smtp-handler.js";
import { MessageStore, type StoreOptions } from "./store.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

export interface InboxOptions extends StoreOptions {
  readonly smtpHost?: string;
  /** Default 1025; 0 picks a free port. */
  readonly smtpPort?: number;
  readonly httpHost?: string;
  /** Default 8025; 0 picks a free port. */
  readonly httpPort?: number;
  /** PEM certificate and key: STARTTLS is offered. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer } | undefined;
  /** AUTH: `"any"` accepts every login; a users file's text (`alice:wonderland` lines) checks them. */
  readonly auth?: { readonly any: true } | { readonly usersFile: string } | undefined;
  /** Serve LMTP instead of SMTP. */
  readonly lmtp?: boolean;
  /** Largest message, bytes (default 32 MiB; 0 for none). */
  readonly size?: number;
}

export interface RunningInbox {
  readonly store: MessageStore;
  readonly faults: Faults;
  readonly smtp: SmtpServer;
  readonly smtpPort: number;
  readonly httpPort: number;
  readonly smtpUrl: string;
  readonly httpUrl: string;
  close(): Promise<void>;
}

const acceptAny: Authenticator = (_server, _session, _envelope, _mechanism, credentials) => ({
  success: true,
  authData: credentials,
});

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Starts the inbox: SMTP (or LMTP) in, SQLite storage, the HTTP API and UI. */
export async function startInbox(options: InboxOptions = {}): Promise<RunningInbox> {
  const store = new MessageStore(options);
  const faults = new Faults();
  const connections = new Connections();
  const smtpHost = options.smtpHost ?? "127.0.0.1";
  const httpHost = options.httpHost ?? "127.0.0.1";
  let auth = {};
  if (options.auth && "any" in options.auth)
    auth = authOptions({
      authenticator: acceptAny,
      mechanisms: ["PLAIN", "LOGIN"],
      requireTls: false,
      failedAttempts: false,
    });
  else if (options.auth)
    auth = authOptions({ users: parseUsersFile(options.auth.usersFile), requireTls: false });
  let smtp: SmtpServer;
  try {
    smtp = await serveSmtp(inboxHandler(store, faults, connections), {
      host: smtpHost,
      port: options.smtpPort ?? 1025,
      lmtp: options.lmtp ?? false,
      dataSizeLimit: options.size ?? 32 * 1024 * 1024,
      ...(options.tls && { tls: { cert: options.tls.cert, key: options.tls.key } }),
      ...auth,
    });
  } catch (error) {
    store.close();
    throw error;
  }
  smtp.server.on("connection", (socket) => connections.track(socket));
  const smtpUrl = `${options.lmtp ? "lmtp" : "smtp"}://${hostPort(smtpHost, smtp.port)}`;
  const app = createApi({
    store,
    faults,
    version,
    publicDir: new URL("../public/", import.meta.url),
    smtpAddress: () => smtpUrl,
  });
  let listening: (port: number) => void = () => undefined;
  const ready = new Promise<number>((resolve) => {
    listening = resolve;
  });
  const httpServer = serveHttp(
    { fetch: app.fetch, hostname: httpHost, port: options.httpPort ?? 8025 },
    (info: AddressInfo) => listening(info.port),
  );
  let httpPort: number;
  try {
    httpPort = await Promise.race([
      ready,
      new Promise<never>((_, reject) => httpServer.once("error", reject)),
    ]);
  } catch (error) {
    await smtp.close();
    store.close();
    throw error;
  }
  return {
    store,
    faults,
    smtp,
    smtpPort: smtp.port,
    httpPort,
    smtpUrl,
    httpUrl: `http://${hostPort(httpHost, httpPort)}`,
    async close() {
      await smtp.close();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        // Long polls and event streams end with the process, not with a grace period.
        (httpServer as import("node:http").Server).closeAllConnections?.();
      });
      store.close();
    },
  };
}

import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { Handler } from "@smtpkit/core/server";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import {
  CHANNELS,
  type MetricsServer,
  observe,
  openTelemetryObserver,
  promMetrics,
  serveMetrics,
  serverLogger,
  transcriptObserver,
} from "../src/index.js";
import {
  AUTH_OPTIONS,
  hasTool,
  needs,
  samples,
  scrape,
  sendWithNodemailer,
  servedForEachTest,
  smtplib,
  swaks,
} from "./helpers.js";

const start = servedForEachTest();
const work = mkdtempSync(join(tmpdir(), "smtpkit-observability-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Accepts every message except those whose subject says `reject`. */
const POLICY: Handler = {
  handleDATA(_server, _session, envelope) {
    const text = new TextDecoder().decode(envelope.content as Uint8Array);
    return /^Subject: reject/m.test(text) ? "554 5.7.1 Rejected by policy" : "250 2.0.0 Queued";
  },
};

interface Line {
  level: number;
  msg: string;
  sessionId: string | null;
  peer?: string;
  event?: string;
  transactionId?: string | null;
  [field: string]: unknown;
}

/** A pino logger writing JSON lines to a file, and a reader parsing them back. */
function jsonLog(name: string, level = "info") {
  const path = join(work, `${name}.log`);
  const logger = pino({ level }, pino.destination({ dest: path, sync: true }));
  return {
    logger,
    lines: (): Line[] =>
      readFileSync(path, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Line),
  };
}

/** Waits until `check()` holds (the session's last lines come after the client's QUIT). */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("structured logs (pino)", () => {
  it("every line of a session carries its sessionId and peer; the events are named", async () => {
    const { logger, lines } = jsonLog("sessions");
    const server = await start(POLICY, { ...AUTH_OPTIONS, observer: observe({ logger }) });
    serverLogger(logger).info({ port: server.port }, "listening");
    expect(await sendWithNodemailer(server.port, { subject: "one" })).toBeNull();
    const refused = await sendWithNodemailer(server.port, { subject: "reject me" });
    expect(refused?.message).toContain("554");
    await until(() => lines().filter((l) => l.event === "close").length === 2);
    const all = lines();
    expect(all[0]).toMatchObject({ sessionId: null, msg: "listening" });
    const sessions = new Map<string, Line[]>();
    for (const line of all.slice(1)) {
      expect(typeof line.sessionId).toBe("string");
      sessions.set(line.sessionId as string, [
        ...(sessions.get(line.sessionId as string) ?? []),
        line,
      ]);
    }
    expect(sessions.size).toBe(2);
    for (const session of sessions.values()) {
      expect(new Set(session.map((l) => l.peer)).size).toBe(1);
      expect(session[0]?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      // At info level a message is one line (data); MAIL and RCPT are debug lines.
      expect(session.map((l) => l.event)).toEqual([
        "connect",
        "data",
        ...(session.some((l) => l.event === "reject") ? ["reject"] : []),
        "close",
      ]);
      expect(session.find((l) => l.event === "data")).toMatchObject({ from: "alice@example.com" });
      const transaction = session.filter((l) => l.event === "data" || l.event === "reject");
      const id = transaction[0]?.transactionId;
      expect(id).toBe(`${session[0]?.sessionId}.1`);
      expect(transaction.every((l) => l.transactionId === id)).toBe(true);
      const close = session.at(-1) as Line;
      // Nodemailer sends QUIT and closes without waiting for the 221: either end is a clean one.
      expect(["quit", "eof"]).toContain(close.reason);
      expect(close.durationMs).toBeGreaterThan(0);
      expect(close.bytesIn).toBeGreaterThan(100);
      expect(close.bytesOut).toBeGreaterThan(100);
    }
    const [accepted, rejected] = [...sessions.values()];
    expect(accepted?.find((l) => l.event === "data")).toMatchObject({
      result: "accepted",
      code: 250,
      recipients: 1,
    });
    expect(rejected?.find((l) => l.event === "data")).toMatchObject({
      result: "rejected",
      code: 554,
    });
    expect(rejected?.find((l) => l.event === "reject")).toMatchObject({
      command: "DATA",
      code: 554,
    });
  });

  it("never logs credentials, at debug level with the transcript either", async () => {
    const { logger, lines } = jsonLog("credentials", "debug");
    const server = await start(POLICY, {
      ...AUTH_OPTIONS,
      observer: observe({ logger, transcript: true }),
    });
    const secret = "s3cr3t-password";
    const plain = await sendWithNodemailer(server.port, {
      subject: "plain",
      auth: { user: "alice", pass: secret, method: "PLAIN" },
    });
    expect(plain?.message).toContain("535");
    const login = await sendWithNodemailer(server.port, {
      subject: "login",
      auth: { user: "alice", pass: secret, method: "LOGIN" },
    });
    expect(login?.message).toContain("535");
    expect(
      await sendWithNodemailer(server.port, {
        subject: "good",
        auth: { user: "alice", pass: "wonderland", method: "PLAIN" },
      }),
    ).toBeNull();
    await until(() => lines().filter((l) => l.event === "close").length === 3);
    // MAIL and RCPT are debug lines, with the transaction's id.
    const rcpt = lines().find((l) => l.event === "rcpt");
    expect(rcpt).toMatchObject({ level: 20, address: "bob@example.org", code: 250 });
    expect(rcpt?.transactionId).toBe(`${rcpt?.sessionId}.1`);
    const text = lines()
      .map((l) => JSON.stringify(l))
      .join("\n");
    const transcript = lines()
      .filter((l) => l.event === "transcript")
      .map((l) => l.line);
    expect(transcript).toContain("> AUTH PLAIN ********");
    expect(transcript).toContain("> AUTH LOGIN");
    expect(transcript).toContain("> ********");
    expect(transcript).toContain("< 235 2.7.0 Authentication successful");
    expect(
      lines()
        .filter((l) => l.event === "auth")
        .map((l) => [l.mechanism, l.success]),
    ).toEqual([
      ["PLAIN", false],
      ["LOGIN", false],
      ["PLAIN", true],
    ]);
    for (const forbidden of [
      secret,
      "wonderland",
      Buffer.from(`\0alice\0${secret}`).toString("base64"),
      Buffer.from("\0alice\0wonderland").toString("base64"),
      Buffer.from(secret).toString("base64"),
    ])
      expect(text).not.toContain(forbidden);
  });

  it("a transcript sink gets each session's dialog in order", async () => {
    const lines: { sessionId: string; line: string }[] = [];
    let closed = false;
    const observer = observe({
      observers: [
        transcriptObserver((line) => lines.push(line)),
        {
          close: () => {
            closed = true;
          },
        },
      ],
    });
    const server = await start(POLICY, { observer });
    expect(await sendWithNodemailer(server.port, { subject: "transcribed" })).toBeNull();
    await until(() => closed);
    expect(new Set(lines.map((l) => l.sessionId)).size).toBe(1);
    const dialog = lines.map((l) => l.line);
    expect(dialog[0]).toMatch(/^< 220 mx\.test/);
    expect(dialog).toContain("> MAIL FROM:<alice@example.com>");
    expect(dialog).toContain("< 354 End data with <CR><LF>.<CR><LF>");
    const queued = dialog.indexOf("< 250 2.0.0 Queued");
    expect(queued).toBeGreaterThan(dialog.indexOf("< 354 End data with <CR><LF>.<CR><LF>"));
    // After the message only QUIT's 221 (when the client stayed to read it).
    const after = dialog.slice(queued + 1).filter((line) => line.startsWith("< "));
    expect(after).toEqual(after.length === 0 ? [] : ["< 221 2.0.0 Bye"]);
  });
});

describe("metrics (prom-client) over HTTP", () => {
  const python = needs("python3", hasTool("python3"));
  it.skipIf(python.skip)(
    `/metrics counts what was sent: 3 accepted, 1 rejected, AUTH failures by mechanism${python.suffix}`,
    async () => {
      const registry = new Registry();
      const server = await start(POLICY, {
        ...AUTH_OPTIONS,
        observer: observe({ metrics: promMetrics(registry), channels: false }),
      });
      let http: MetricsServer | null = null;
      try {
        http = await serveMetrics({ port: 0, registry });
        for (const subject of ["one", "two", "three"])
          expect(await sendWithNodemailer(server.port, { subject })).toBeNull();
        expect(
          (await sendWithNodemailer(server.port, { subject: "reject this" }))?.message,
        ).toContain("554");
        const wrong = { user: "alice", pass: "wrong", method: "PLAIN" } as const;
        expect(
          (await sendWithNodemailer(server.port, { subject: "x", auth: wrong }))?.message,
        ).toContain("535");
        // smtplib: one LOGIN attempt with a wrong password, then QUIT.
        const out = await smtplib(
          server.port,
          [
            "s = smtplib.SMTP('127.0.0.1', PORT)",
            "s.ehlo()",
            "s.user, s.password = 'alice', 'wrong'",
            "try:",
            "    s.auth('LOGIN', s.auth_login)",
            "except smtplib.SMTPAuthenticationError as e:",
            "    print(e.smtp_code)",
            "s.quit()",
          ].join("\n"),
        );
        expect(out.trim()).toBe("535");
        const sessions = 6;
        await until(() => server.connections === 0);
        const health = await scrape(http.port, "/healthz");
        expect(health).toEqual({ status: 200, body: "ok\n" });
        expect((await scrape(http.port, "/nothing")).status).toBe(404);
        const page = await scrape(http.port, "/metrics");
        expect(page.status).toBe(200);
        const m = samples(page.body);
        expect(m.get('smtpkit_messages_total{result="accepted"}')).toBe(3);
        expect(m.get('smtpkit_messages_total{result="rejected"}')).toBe(1);
        expect(m.get('smtpkit_auth_total{mechanism="PLAIN",result="failure"}')).toBe(1);
        expect(m.get('smtpkit_auth_total{mechanism="LOGIN",result="failure"}')).toBe(1);
        expect(m.get('smtpkit_auth_total{mechanism="PLAIN",result="success"}')).toBeUndefined();
        expect(m.get('smtpkit_connections_total{tls="no"}')).toBe(sessions);
        expect(m.get('smtpkit_connections_open{tls="no"}')).toBe(0);
        expect(m.get('smtpkit_commands_total{command="DATA"}')).toBe(4);
        expect(m.get('smtpkit_commands_total{command="AUTH"}')).toBe(2);
        expect(m.get('smtpkit_rejections_total{command="DATA",code="554"}')).toBe(1);
        expect(m.get('smtpkit_replies_total{class="5xx"}')).toBe(3); // 554, 535, 535
        const ended = [...m].filter(([name]) =>
          name.startsWith("smtpkit_session_duration_seconds_count"),
        );
        expect(ended.reduce((sum, [, value]) => sum + value, 0)).toBe(sessions);
        expect(m.get('smtpkit_data_duration_seconds_count{result="accepted"}')).toBe(3);
        expect(m.get("smtpkit_received_bytes_total")).toBeGreaterThan(4 * 200);
      } finally {
        await http?.close();
      }
    },
  );

  it("limits hit are counted by the option's name (maxRecipients, maxConnections)", async () => {
    const registry = new Registry();
    const server = await start(
      {},
      {
        maxRecipients: 1,
        maxConnections: 1,
        observer: observe({ metrics: promMetrics(registry) }),
      },
    );
    const { createConnection } = await import("node:net");
    const first = createConnection(server.port, "127.0.0.1");
    await new Promise((resolve) => first.once("data", resolve));
    const second = createConnection(server.port, "127.0.0.1");
    const refusal = await new Promise<string>((resolve) =>
      second.once("data", (d) => resolve(String(d))),
    );
    expect(refusal).toMatch(/^421 /);
    second.destroy();
    first.write(
      "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n",
    );
    let dialog = "";
    await new Promise<void>((resolve) =>
      first.on("data", (d) => {
        dialog += d;
        if (/^452 /m.test(dialog)) resolve();
      }),
    );
    first.end("QUIT\r\n");
    const m = samples(await registry.metrics());
    expect(m.get('smtpkit_limits_total{limit="maxConnections"}')).toBe(1);
    expect(m.get('smtpkit_limits_total{limit="maxRecipients"}')).toBe(1);
  });
});

describe("diagnostics_channel", () => {
  const swaksTool = needs("swaks", hasTool("swaks", ["--version"]));
  it.skipIf(swaksTool.skip)(
    `subscribers see session and transaction events${swaksTool.suffix}`,
    async () => {
      const seen: [string, Record<string, unknown>][] = [];
      const listeners = Object.values(CHANNELS).map((name) => {
        const listener = (message: unknown) => {
          const { session, ...rest } = message as { session: { id: string } | null };
          seen.push([name, { sessionId: session?.id ?? null, ...rest }]);
        };
        subscribe(name, listener);
        return [name, listener] as const;
      });
      try {
        const server = await start(POLICY, { observer: observe() });
        const sent = await swaks(server.port, "--from", "a@example.com", "--to", "b@example.org");
        expect(sent.code, sent.stdout).toBe(0);
        await until(() => seen.some(([name]) => name === CHANNELS.sessionEnd));
      } finally {
        for (const [name, listener] of listeners) unsubscribe(name, listener);
      }
      const order = seen
        .map(([name]) => name)
        .filter((name) => !name.endsWith(":command") && !name.endsWith(":reply"));
      expect(order).toEqual([
        "smtpkit:session:start",
        "smtpkit:transaction:mail",
        "smtpkit:transaction:rcpt",
        "smtpkit:transaction:end",
        "smtpkit:session:end",
      ]);
      const id = seen[0]?.[1].sessionId;
      expect(typeof id).toBe("string");
      expect(seen.every(([, message]) => message.sessionId === id)).toBe(true);
      const end = seen.find(([name]) => name === CHANNELS.transactionEnd)?.[1];
      expect(end).toMatchObject({ transactionId: `${id}.1`, result: "accepted", code: 250 });
      expect(
        seen.filter(([name]) => name === CHANNELS.sessionCommand).map(([, m]) => m.verb),
      ).toEqual(["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    },
  );
});

describe("OpenTelemetry", () => {
  it("one span per session and, inside it, one per transaction", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const server = await start(POLICY, {
      observer: openTelemetryObserver(provider.getTracer("test")),
    });
    expect(await sendWithNodemailer(server.port, { subject: "traced" })).toBeNull();
    expect(
      (await sendWithNodemailer(server.port, { subject: "reject traced" }))?.message,
    ).toContain("554");
    await until(
      () => exporter.getFinishedSpans().filter((s) => s.name === "smtp.session").length === 2,
    );
    const spans = exporter.getFinishedSpans();
    const sessions = spans.filter((s) => s.name === "smtp.session");
    const transactions = spans.filter((s) => s.name === "smtp.transaction");
    expect(transactions).toHaveLength(2);
    for (const transaction of transactions) {
      const parent = sessions.find(
        (s) => s.spanContext().spanId === transaction.parentSpanContext?.spanId,
      );
      expect(parent).toBeDefined();
      expect(transaction.attributes["smtp.transaction.id"]).toBe(
        `${parent?.attributes["smtp.session.id"]}.1`,
      );
    }
    expect(transactions.map((t) => t.attributes["smtp.transaction.result"])).toEqual([
      "accepted",
      "rejected",
    ]);
    expect(transactions[1]?.status.code).toBe(2); // SpanStatusCode.ERROR
    for (const session of sessions)
      expect(["quit", "eof"]).toContain(session.attributes["smtp.close.reason"]);
    await provider.shutdown();
  });

  it("without an SDK the global tracer is the API's no-op: the session runs the same", async () => {
    const server = await start(POLICY, { observer: openTelemetryObserver() });
    expect(await sendWithNodemailer(server.port, { subject: "untraced" })).toBeNull();
  });
});

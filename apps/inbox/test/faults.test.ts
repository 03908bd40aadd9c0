import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { api, inboxForEachTest, json, transport } from "./served.js";

const served = inboxForEachTest({ auth: { any: true } });

const addRule = (rule: Record<string, unknown>) =>
  api<Record<string, unknown>>(served.inbox, "/api/v1/faults", json("POST", rule));

const message = (subject: string, to = "bob@example.com") => ({
  from: "alice@example.com",
  to,
  subject,
  text: subject,
});

async function outcome(send: Promise<{ response: string }>): Promise<string> {
  return send.then(
    (info) => info.response,
    (error: Error & { response?: string; code?: string }) =>
      error.response ?? `${error.code}: ${error.message}`,
  );
}

/** One raw SMTP dialog: sends each line after the previous reply, returns every reply line. */
async function dialog(
  port: number,
  lines: string[],
): Promise<{ replies: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buffer = "";
    const replies: string[] = [];
    let next = 0;
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      buffer += data;
      for (;;) {
        const end = buffer.indexOf("\r\n");
        if (end === -1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        replies.push(line);
        if (/^\d{3} /.test(line)) {
          if (next < lines.length) socket.write(`${lines[next++]}\r\n`);
          else socket.end();
        }
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ replies, closed: true }));
  });
}

describe("fault injection (POST/GET/DELETE /api/v1/faults)", () => {
  it("refuses the Nth message at DATA, once, and keeps the others", async () => {
    const created = await addRule({ stage: "DATA", nth: 2, reply: "451 4.3.0 Try again later" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: "1",
      stage: "DATA",
      after: 1,
      count: 1,
      seen: 0,
      fired: 0,
    });
    const t = transport(served.inbox);
    expect(await outcome(t.sendMail(message("one")))).toMatch(/^250/);
    expect(await outcome(t.sendMail(message("two")))).toBe("451 4.3.0 Try again later");
    expect(await outcome(t.sendMail(message("three")))).toMatch(/^250/);
    const listing = await api<{ messages: { Subject: string }[] }>(
      served.inbox,
      "/api/v1/messages",
    );
    expect(listing.body.messages.map((m) => m.Subject)).toEqual(["three", "one"]);
    // Used up: the rule is gone.
    expect((await api<unknown[]>(served.inbox, "/api/v1/faults")).body).toEqual([]);
  });

  it("refuses one recipient at RCPT until cleared", async () => {
    await addRule({
      stage: "RCPT",
      recipient: "ghost@example.com",
      reply: "550 5.1.1 No such user",
      count: null,
    });
    const t = transport(served.inbox);
    expect(await outcome(t.sendMail(message("a", "ghost@example.com")))).toMatch(
      /^550 5\.1\.1 No such user/,
    );
    expect(await outcome(t.sendMail(message("b", "ghost@example.com")))).toMatch(/^550/);
    expect(await outcome(t.sendMail(message("c", "bob@example.com")))).toMatch(/^250/);
    const rules = await api<{ seen: number; fired: number; recipient: string }[]>(
      served.inbox,
      "/api/v1/faults",
    );
    expect(rules.body).toMatchObject([
      { recipient: "ghost@example.com", seen: 2, fired: 2, count: null },
    ]);
    expect((await api(served.inbox, "/api/v1/faults", { method: "DELETE" })).status).toBe(200);
    expect(await outcome(t.sendMail(message("d", "ghost@example.com")))).toMatch(/^250/);
  });

  it("answers MAIL and AUTH with the rule's reply", async () => {
    await addRule({ stage: "MAIL", reply: "421 4.7.0 Too busy" });
    const first = await dialog(served.inbox.smtpPort, ["EHLO client", "MAIL FROM:<a@example.com>"]);
    expect(first.replies.at(-1)).toBe("421 4.7.0 Too busy");
    await addRule({ stage: "AUTH", reply: "454 4.7.0 Temporary authentication failure" });
    const auth = transport(served.inbox, { auth: { user: "alice", pass: "any" } });
    expect(await outcome(auth.sendMail(message("auth")))).toMatch(/^454 4\.7\.0/);
    expect(await outcome(auth.sendMail(message("auth again")))).toMatch(/^250/);
  });

  it("delays a reply", async () => {
    await addRule({ stage: "DATA", delay: 700 });
    const started = Date.now();
    expect(await outcome(transport(served.inbox).sendMail(message("slow")))).toMatch(/^250/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
    const started2 = Date.now();
    await transport(served.inbox).sendMail(message("fast"));
    expect(Date.now() - started2).toBeLessThan(650);
  });

  it("drops the connection without a reply", async () => {
    await addRule({ stage: "RCPT", drop: true });
    const result = await dialog(served.inbox.smtpPort, [
      "EHLO client",
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<b@example.com>",
      "NOOP",
    ]);
    expect(result.closed).toBe(true);
    // The last reply is MAIL's 250: RCPT got none.
    expect(result.replies.at(-1)).toMatch(/^250 /);
    expect(result.replies.some((line) => line.startsWith("421"))).toBe(false);
    expect(await outcome(transport(served.inbox).sendMail(message("after the drop")))).toMatch(
      /^250/,
    );
  });

  it("refuses bad rules with 400 and removes one rule by id", async () => {
    for (const bad of [
      { stage: "NOPE", reply: "450 x" },
      { stage: "DATA" },
      { reply: "hello" },
      { nth: 0, reply: "450 x" },
    ]) {
      const response = await addRule(bad);
      expect(response.status, JSON.stringify(bad)).toBe(400);
    }
    const a = await addRule({ stage: "DATA", reply: "450 4.2.0 a" });
    await addRule({ stage: "DATA", reply: "450 4.2.0 b" });
    expect(
      (await api(served.inbox, `/api/v1/faults/${a.body.id}`, { method: "DELETE" })).status,
    ).toBe(200);
    expect((await api(served.inbox, "/api/v1/faults/999", { method: "DELETE" })).status).toBe(404);
    const rules = await api<{ reply: string }[]>(served.inbox, "/api/v1/faults");
    expect(rules.body.map((r) => r.reply)).toEqual(["450 4.2.0 b"]);
  });
});

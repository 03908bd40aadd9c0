// Load generator (Node, node:net / node:tls): the same client for every server runtime.
//   node loadgen.mjs '{"port":N,"sessions":20,"size":1024,"seconds":5,"starttls":false}'
// Each session: EHLO (and STARTTLS + EHLO), then transactions in a loop until the deadline,
// MAIL/RCPT/DATA pipelined in one write (RFC 2920), then the body and the dot. Prints
// {"messages":N,"octets":N,"seconds":S}. Only 127.0.0.1; bounded by the deadline.
import * as net from "node:net";
import * as tls from "node:tls";

const cfg = JSON.parse(process.argv[2] ?? "{}");

function message(size) {
  const line = `${"abcdefghijklmnopqrstuvwxyz0123456789".repeat(3).slice(0, 76)}\r\n`;
  const head = "From: <a@bench.test>\r\nTo: <b@bench.test>\r\nSubject: bench\r\n\r\n";
  let body = head;
  while (body.length + line.length <= size) body += line;
  body += `${"x".repeat(Math.max(0, size - body.length - 2))}\r\n`;
  return Buffer.from(`${body}.\r\n`, "latin1");
}

class Session {
  constructor(socket) {
    this.socket = socket;
    this.buffer = "";
    this.waiters = [];
    this.attach(socket);
  }
  attach(socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }
  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
  async replies(count) {
    const out = [];
    while (out.length < count) {
      const match = /^(\d{3}) .*\r\n/m.exec(this.buffer);
      if (match) {
        out.push(match[1]);
        this.buffer = this.buffer.slice(match.index + match[0].length);
        continue;
      }
      if (this.closed) throw new Error(`closed; ${out.length}/${count} replies`);
      await new Promise((resolve) => this.waiters.push(resolve));
    }
    return out;
  }
  send(data) {
    return new Promise((resolve) => this.socket.write(data, resolve));
  }
}

async function open() {
  const socket = net.connect({ host: "127.0.0.1", port: cfg.port, noDelay: true });
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let session = new Session(socket);
  await session.replies(1);
  await session.send("EHLO bench.test\r\n");
  await session.replies(1);
  if (cfg.starttls) {
    await session.send("STARTTLS\r\n");
    await session.replies(1);
    socket.removeAllListeners("data");
    const secure = tls.connect({ socket, rejectUnauthorized: false, servername: "localhost" });
    await new Promise((resolve, reject) =>
      secure.once("secureConnect", resolve).once("error", reject),
    );
    session = new Session(secure);
    await session.send("EHLO bench.test\r\n");
    await session.replies(1);
  }
  return session;
}

const body = message(cfg.size);
const sessions = await Promise.all(Array.from({ length: cfg.sessions }, open));
const started = performance.now();
const deadline = started + cfg.seconds * 1000;
let messages = 0;
await Promise.all(
  sessions.map(async (session) => {
    while (performance.now() < deadline) {
      await session.send("MAIL FROM:<a@bench.test>\r\nRCPT TO:<b@bench.test>\r\nDATA\r\n");
      const [mail, rcpt, data] = await session.replies(3);
      if (mail !== "250" || rcpt !== "250" || data !== "354")
        throw new Error(`${mail} ${rcpt} ${data}`);
      await session.send(body);
      const [stored] = await session.replies(1);
      if (stored !== "250") throw new Error(`refused: ${stored}`);
      messages++;
    }
    await session.send("QUIT\r\n");
    session.socket.end();
  }),
);
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ messages, octets: messages * body.length, seconds }));

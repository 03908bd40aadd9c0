// The cost of sender verification per message: the same DKIM-signed messages sent by Nodemailer
// (one pooled connection) to smtpkit with a counting delivery, without and with the verifier
// (SPF, DKIM, DMARC, ARC), its DNS answered by a dnsmasq on 127.0.0.1. CPU is this process's
// (client and server together), so the difference between the rows is the verifier's.
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { compose } from "@smtpkit/core/server";
import { serve } from "@smtpkit/node";
import { dkimSign } from "mailauth";
import nodemailer from "nodemailer";
import { verifier } from "../dist/index.js";

if (spawnSync("dnsmasq", ["--version"]).status !== 0) {
  console.log("verify bench: skipped (dnsmasq not installed)");
  process.exit(0);
}

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const key = publicKey.export({ type: "spki", format: "der" }).toString("base64");
const port = await new Promise((resolve) => {
  const socket = createSocket("udp4");
  socket.bind(0, "127.0.0.1", () => {
    const { port } = socket.address();
    socket.close(() => resolve(port));
  });
});
const nonce = randomBytes(8).toString("hex");
const dnsmasq = spawn(
  "dnsmasq",
  [
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--pid-file=",
    "--local=/#/",
    ...(process.getuid?.() === 0 ? ["--user=root"] : []),
    `--txt-record=ready.invalid,${nonce}`,
    "--txt-record=example.com,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=_dmarc.example.com,v=DMARC1; p=reject",
    `--txt-record=sel._domainkey.example.com,${`v=DKIM1; k=rsa; p=${key}`.match(/.{1,250}/g).join(",")}`,
  ],
  { stdio: "ignore" },
);
const probe = new Resolver({ timeout: 200, tries: 1 });
probe.setServers([`127.0.0.1:${port}`]);
for (let i = 0; ; i++) {
  const answer = await probe.resolveTxt("ready.invalid").catch(() => null);
  if (answer?.[0]?.join("") === nonce) break;
  if (i > 50) throw new Error("dnsmasq did not start");
  await new Promise((resolve) => setTimeout(resolve, 50));
}

async function signed(size) {
  const text =
    "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: bench\r\n" +
    "Date: Fri, 04 Dec 2026 01:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\n\r\n" +
    `${"0123456789".repeat(7)}\r\n`.repeat(Math.ceil(size / 72));
  const result = await dkimSign(text, {
    canonicalization: "relaxed/relaxed",
    signatureData: [{ signingDomain: "example.com", selector: "sel", privateKey }],
  });
  return Buffer.from(result.signatures + text);
}

const counting = {
  async handleDATAStream(_s, _ss, _e, body) {
    for await (const _chunk of body) {
      // read and drop
    }
    return "250 2.0.0 OK";
  },
};

async function run(label, fragments, raw, count) {
  const server = await serve(compose(...fragments, counting), {
    host: "127.0.0.1",
    port: 0,
    hostname: "mx.test",
    dataSizeLimit: 64 * 1024 * 1024,
  });
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: server.port,
    ignoreTLS: true,
    pool: true,
    maxConnections: 1,
    maxMessages: Number.POSITIVE_INFINITY,
    name: "client.example.com",
  });
  const envelope = { from: "alice@example.com", to: ["bob@example.net"] };
  await transport.sendMail({ envelope, raw }); // warm-up
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < count; i++) await transport.sendMail({ envelope, raw });
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  transport.close();
  await server.close();
  const perMessage = (used.user + used.system) / count;
  return {
    label,
    rate: (count * 1000) / wall,
    perMessage,
    mbps: (raw.length * count) / 1048576 / (wall / 1000),
  };
}

const dnsServer = `127.0.0.1:${port}`;
const rows = [];
try {
  const small = await signed(1024);
  const big = await signed(5 * 1024 * 1024);
  rows.push(await run("1 KB, no verifier", [], small, 300));
  rows.push(await run("1 KB, verifier (DNS cached)", [verifier({ dnsServer })], small, 300));
  rows.push(
    await run(
      "1 KB, verifier (no cache: 4 lookups to dnsmasq)",
      [verifier({ resolver: uncached(dnsServer) })],
      small,
      300,
    ),
  );
  rows.push(await run("5 MB, no verifier", [], big, 8));
  rows.push(await run("5 MB, verifier (spooled to a file)", [verifier({ dnsServer })], big, 8));
} finally {
  dnsmasq.kill();
}

function uncached(server) {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([server]);
  return (name, type) => resolver.resolve(name, type);
}

console.log("verify bench: Nodemailer → smtpkit, DKIM-signed (RSA 2048), one pooled connection");
console.log("| scenario | msgs/s | MB/s | CPU per message (client + server) |");
console.log("| --- | --- | --- | --- |");
for (const row of rows) {
  console.log(
    `| ${row.label} | ${row.rate.toFixed(0)} | ${row.mbps.toFixed(1)} | ${
      row.perMessage >= 10_000
        ? `${(row.perMessage / 1000).toFixed(1)} ms`
        : `${row.perMessage.toFixed(0)} µs`
    } |`,
  );
}
const cost = (a, b) => rows[b].perMessage - rows[a].perMessage;
console.log(
  `verification cost per message: 1 KB ${cost(0, 1).toFixed(0)} µs (cached DNS), ${cost(0, 2).toFixed(0)} µs (uncached); 5 MB ${(cost(3, 4) / 1000).toFixed(1)} ms`,
);

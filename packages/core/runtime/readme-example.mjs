// The README's "Using the core alone" example, verbatim but for the import path (a vitest test
// keeps the two the same). The shared runtime cases run it on Node, Deno and Bun.
import { ServerConnection } from "../dist/index.js";

const conn = new ServerConnection({ hostname: "mx.example.com" });
const enc = new TextEncoder();
const dec = new TextDecoder();
let body = "";

conn.receiveData(enc.encode(
  "EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nHello\r\n.\r\nQUIT\r\n",
));
for (let event = conn.nextEvent(); event.type !== "needData" && event.type !== "closed"; event = conn.nextEvent()) {
  switch (event.type) {
    case "rcpt":
      if (event.address.endsWith("@example.com")) conn.accept();
      else conn.reply("550 5.1.1 No such user");
      break;
    case "bodyChunk":
      body += dec.decode(event.data, { stream: true });
      break;
    case "bodyEnd":
      if (!event.error) conn.reply("250 2.0.0 Queued"); // with an error, the engine has replied

      break;
    case "hello": case "mail": case "rset": case "noop": case "quit": case "vrfy":
      conn.accept(); // the default reply
      break;
  }
}
console.log(dec.decode(conn.dataToSend())); // 220 greeting, 250-EHLO lines, 250s, 354, 250 Queued, 221 Bye
console.log(body); // "Hello\r\n"

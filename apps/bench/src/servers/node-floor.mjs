// The Node floor: the least a node:net SMTP sink can do. It greets, answers every command line,
// and scans DATA for CRLF.CRLF (across chunk boundaries); no parsing, no checks, no limits.
import * as net from "node:net";
import { counters, ready } from "./common.mjs";

const END = Buffer.from("\r\n.\r\n");
const CRLF = Buffer.from("\r\n");
const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.write("220 bench.floor.example ESMTP\r\n");
  let pending = Buffer.alloc(0); // unfinished command line, or the last 4 body bytes
  let inData = false;
  let bodyBytes = 0;
  socket.on("data", (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (inData) {
        const end = buf.indexOf(END);
        if (end === -1) {
          const keep = Math.min(4, buf.length);
          bodyBytes += buf.length - keep;
          pending = buf.subarray(buf.length - keep);
          return;
        }
        counters.messages++;
        counters.bytes += bodyBytes + end; // the body with its last CRLF, without the one we added
        socket.write("250 2.0.0 Ok\r\n");
        inData = false;
        buf = buf.subarray(end + END.length);
        continue;
      }
      const eol = buf.indexOf(10);
      if (eol === -1) break;
      const verb = buf.toString("latin1", 0, Math.min(4, eol)).toUpperCase();
      buf = buf.subarray(eol + 1);
      if (verb === "DATA") {
        inData = true;
        bodyBytes = 0;
        buf = Buffer.concat([CRLF, buf]); // so that an empty body ("." right away) matches END
        socket.write("354 End data with <CR><LF>.<CR><LF>\r\n");
      } else if (verb === "QUIT") socket.end("221 2.0.0 Bye\r\n");
      else if (verb === "EHLO") socket.write("250-bench.floor.example\r\n250 8BITMIME\r\n");
      else {
        if (verb === "RCPT") counters.recipients++;
        socket.write("250 Ok\r\n");
      }
    }
    pending = Buffer.from(buf);
  });
});
server.maxConnections = 10_000;
server.listen(0, "127.0.0.1", () => ready(server.address().port));

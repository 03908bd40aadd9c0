// Reference row for memory per idle connection: a bare node:net server that only greets.
import * as net from "node:net";
import { ready } from "./common.mjs";

const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.write("220 bare.example ESMTP\r\n");
});
server.listen(0, "127.0.0.1", () => ready(server.address().port));

// The core's server types, re-exported so an application needs a single import.
export {
  Envelope,
  type Handler,
  type PeerAddress,
  Session,
  SMTP,
  type SmtpOptions,
  type SmtpTransport,
  type TlsInfo,
  tooManyConnectionsReply,
} from "@smtpkit/core/server";
export {
  NodeTransport,
  type NodeTransportOptions,
  type StartTlsOptions,
} from "./node-transport.js";
export {
  createServer,
  type HandleSocketOptions,
  handleSocket,
  type ServeOptions,
  type SmtpClass,
  SmtpServer,
  serve,
  type TlsServerOptions,
} from "./serve.js";

// @smtpkit/deno: the core's SMTP class over Deno's sockets. The core's server types are
// re-exported so an application needs a single import.
export {
  compose,
  Envelope,
  type Handler,
  type PeerAddress,
  Session,
  SMTP,
  type SmtpOptions,
  type SmtpTransport,
  SocketTransport,
  type TlsInfo,
} from "@smtpkit/core/server";
export * from "./listen.ts";
export {
  DenoSocket,
  DenoTransport,
  type DenoTransportOptions,
  type StartTlsOptions,
} from "./socket.ts";

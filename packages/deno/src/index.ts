// @smtpkit/deno: the core's SMTP class over Deno's sockets. The core's server types are
// re-exported so an application needs a single import.
export {
  Envelope,
  type Handler,
  type PeerAddress,
  Session,
  SMTP,
  type SmtpOptions,
  type SmtpTransport,
  type TlsInfo,
} from "@smtpkit/core/server";
export {
  DenoTransport,
  type DenoTransportOptions,
  type StartTlsOptions,
} from "./deno-transport.ts";
export * from "./serve.ts";

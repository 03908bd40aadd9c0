// @smtpkit/bun: the core's SMTP class over Bun's sockets. The core's server types are
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
export { BunTransport, type BunTransportOptions, type StartTlsOptions } from "./bun-transport.ts";
export * from "./serve.ts";

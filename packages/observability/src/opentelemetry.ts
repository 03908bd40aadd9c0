import { context, type Span, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { Session, SmtpObserver } from "@smtpkit/core/server";
import { peerText } from "./logs.js";

interface Open {
  readonly session: Span;
  transaction: Span | null;
}

/**
 * OpenTelemetry spans: one `smtp.session` span per connection and, inside it, one
 * `smtp.transaction` span per transaction (accepted MAIL to the body's reply, or to the RSET,
 * HELO/EHLO or end of session that abandons it). `tracer` defaults to the global tracer provider's
 * `@smtpkit/observability` tracer: without an OpenTelemetry SDK registered that is the API's
 * no-op tracer, and the spans cost next to nothing.
 */
export function openTelemetryObserver(
  tracer: Tracer = trace.getTracer("@smtpkit/observability"),
): SmtpObserver {
  const open = new Map<string, Open>();
  const endTransaction = (entry: Open, outcome: string, error: boolean): void => {
    const span = entry.transaction;
    if (!span) return;
    entry.transaction = null;
    span.setAttribute("smtp.transaction.result", outcome);
    if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    span.end();
  };
  const get = (session: Session): Open | undefined => open.get(session.id);
  return {
    connect({ session }) {
      const span = tracer.startSpan("smtp.session", {
        attributes: {
          "smtp.session.id": session.id,
          "network.peer.address": peerText(session.peer) ?? "",
          "smtp.protocol": session.protocol,
        },
      });
      open.set(session.id, { session: span, transaction: null });
    },
    tls({ session, implicit }) {
      get(session)?.session.addEvent(implicit ? "smtps" : "starttls");
    },
    auth({ session, mechanism, success }) {
      get(session)?.session.addEvent("auth", {
        "smtp.auth.mechanism": mechanism,
        "smtp.auth.success": success,
      });
    },
    command({ session, verb }) {
      const entry = get(session);
      if (
        entry?.transaction &&
        (verb === "RSET" || verb === "HELO" || verb === "EHLO" || verb === "LHLO")
      )
        endTransaction(entry, "abandoned", false);
    },
    mail({ session, transactionId, code }) {
      const entry = get(session);
      if (!entry || transactionId === null) return;
      endTransaction(entry, "abandoned", false);
      const parent = trace.setSpan(context.active(), entry.session);
      entry.transaction = tracer.startSpan(
        "smtp.transaction",
        { attributes: { "smtp.transaction.id": transactionId, "smtp.mail.code": code } },
        parent,
      );
    },
    rcpt({ session, code }) {
      get(session)?.transaction?.addEvent("rcpt", { "smtp.rcpt.code": code });
    },
    data({ session, result, code, bytes, recipients }) {
      const entry = get(session);
      const span = entry?.transaction;
      if (!entry || !span) return;
      span.setAttributes({
        "smtp.message.bytes": bytes,
        "smtp.message.recipients": recipients,
        ...(code !== null && { "smtp.data.code": code }),
      });
      endTransaction(entry, result, result !== "accepted");
    },
    close({ session, reason, bytesIn, bytesOut }) {
      const entry = get(session);
      if (!entry) return;
      open.delete(session.id);
      endTransaction(entry, "abandoned", false);
      entry.session.setAttributes({
        "smtp.close.reason": reason,
        "smtp.bytes.in": bytesIn,
        "smtp.bytes.out": bytesOut,
      });
      entry.session.end();
    },
  };
}

import type { Email } from "postal-mime";
import type { AttachmentInfo, MessageRow } from "./store.js";

/** A message in a list, with Mailpit's field names (so that Mailpit clients read it). */
export function summaryJson(row: MessageRow) {
  return {
    ID: String(row.id),
    MessageID: row.messageId,
    Read: row.read,
    From: row.from,
    To: row.to,
    Cc: row.cc,
    Bcc: row.bcc,
    ReplyTo: row.replyTo,
    Subject: row.subject,
    Created: new Date(row.created).toISOString(),
    Tags: row.tags,
    Size: row.size,
    Attachments: row.attachments.filter((a) => a.Disposition === "attachment").length,
    Snippet: row.snippet,
    // Not Mailpit's: the envelope, which a test inbox is often asked about.
    MailFrom: row.mailFrom,
    RcptTo: row.rcptTos,
  };
}

/** The parts of a parsed message as Mailpit lists them; PartID is the position in postal-mime's list, from 1. */
export function partsOf(email: Email): AttachmentInfo[] {
  return email.attachments.map((a, i) => ({
    PartID: String(i + 1),
    FileName: a.filename ?? "",
    ContentType: a.mimeType,
    ContentID: (a.contentId ?? "").replace(/^<|>$/g, ""),
    Size: typeof a.content === "string" ? a.content.length : a.content.byteLength,
    Disposition: a.related || a.disposition === "inline" ? "inline" : "attachment",
  }));
}

function part(a: AttachmentInfo) {
  return {
    PartID: a.PartID,
    FileName: a.FileName,
    ContentType: a.ContentType,
    ContentID: a.ContentID,
    Size: a.Size,
  };
}

/** One message, Mailpit's `GET /api/v1/message/{ID}`. */
export function messageJson(row: MessageRow, email: Email) {
  return {
    ID: String(row.id),
    MessageID: row.messageId,
    Read: row.read,
    From: row.from,
    To: row.to,
    Cc: row.cc,
    Bcc: row.bcc,
    ReplyTo: row.replyTo,
    ReturnPath: row.mailFrom,
    Subject: row.subject,
    Date: email.date ?? new Date(row.created).toISOString(),
    Created: new Date(row.created).toISOString(),
    Tags: row.tags,
    Text: email.text ?? "",
    HTML: email.html ?? "",
    Size: row.size,
    Inline: partsOf(email)
      .filter((a) => a.Disposition === "inline")
      .map(part),
    Attachments: partsOf(email)
      .filter((a) => a.Disposition === "attachment")
      .map(part),
    MailFrom: row.mailFrom,
    RcptTo: row.rcptTos,
  };
}

/** Headers as Mailpit's `GET /api/v1/message/{ID}/headers`: each name with its values. */
export function headersJson(email: Email): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const h of email.headers) {
    const name = h.originalKey ?? h.key;
    const key = Object.keys(out).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    const values = out[key] ?? [];
    values.push(h.value);
    out[key] = values;
  }
  // Sorted by name, as Mailpit returns them.
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

import { addCertificateCases } from "./cases/certificates.js";
import { addDialogCases } from "./cases/dialog.js";
import { caseKit } from "./cases/kit.js";
import { addSessionCases } from "./cases/sessions.js";
import { addTlsCases } from "./cases/tls.js";
import type { ComplianceCase, ComplianceOptions } from "./types.js";

/**
 * The adapter compliance suite: named cases that run the adapter's `serve()` against real
 * clients (Nodemailer and smtplib in child processes) and a minimal client on the runtime's own
 * sockets. Every case starts its own server on 127.0.0.1 and closes it.
 */
export function complianceCases(options: ComplianceOptions): ComplianceCase[] {
  const kit = caseKit(options);
  addDialogCases(kit);
  addTlsCases(kit);
  addCertificateCases(kit);
  addSessionCases(kit);
  return kit.cases;
}

/**
 * MAIL FROM and its parameters: BODY (8BITMIME, BINARYMIME), SMTPUTF8, SIZE (the announced size
 * against `dataSizeLimit`), RET/ENVID (DSN), REQUIRETLS, AUTH, MT-PRIORITY, BY (DELIVERBY),
 * HOLDFOR/HOLDUNTIL (FUTURERELEASE), and the program's own parameters. Each parameter's grammar
 * is in its own syntax/ file; this decides which are offered and what the values are worth.
 * COMMAND_RULES: greeting, auth, the path (`parse`), then no transaction may be open.
 */
import type { MailEvent } from "../../events.js";
import { parsePath, stripKeyword } from "../../syntax/address.js";
import { parseAuthParam } from "../../syntax/auth-param.js";
import { parseDeliverBy } from "../../syntax/deliver-by.js";
import { decodeXtext, type EsmtpParam, parseEsmtpParams } from "../../syntax/esmtp-params.js";
import { parseHoldFor, parseHoldUntil } from "../../syntax/future-release.js";
import { parseMtPriority } from "../../syntax/mt-priority.js";
import type { Dialog } from "../dialog.js";
import { REPLIES, TEMPLATES } from "../replies.js";
import { addressOptions, type Command, extended, type Refusal, refuse } from "./command.js";
import { offeredMechanisms } from "./hello.js";

export interface ParsedPath {
  readonly address: string;
  /** The text after the path: ESMTP parameters. */
  readonly rest: string;
}

/** MAIL FROM: / RCPT TO: and a path; parameters only in an ESMTP session. */
export function parseCommandPath(
  d: Dialog,
  verb: string,
  argument: string | null,
  keyword: "FROM:" | "TO:",
): ParsedPath | Refusal {
  const pathText = argument === null ? null : stripKeyword(argument, keyword);
  if (pathText === null) return refuse(TEMPLATES.syntax(verb, extended(d)));
  const path = parsePath(pathText, addressOptions(d));
  if (!path.ok) return refuse(REPLIES.malformedAddress);
  if (path.address === "" || (path.rest !== "" && !extended(d))) {
    return refuse(TEMPLATES.syntax(verb, extended(d)));
  }
  return { address: path.address, rest: path.rest };
}

export const mail: Command<ParsedPath> = {
  parse: (d, verb, argument) => parseCommandPath(d, verb, argument, "FROM:"),
  run(d, verb, _argument, path) {
    const params = parseEsmtpParams(path.rest);
    if (params === null) return d.reject(verb, TEMPLATES.syntax(verb, extended(d)));
    const o = d.options;
    let body: MailEvent["body"] = null;
    let smtpUtf8 = false;
    let size: number | null = null;
    let requireTls = false;
    let ret: "FULL" | "HDRS" | null = null;
    let envelopeId: string | null = null;
    let auth: MailEvent["auth"] = null;
    let mtPriority: number | null = null;
    let deliverBy: MailEvent["deliverBy"] = null;
    let holdFor: number | null = null;
    let holdUntil: number | null = null;
    // aiosmtpd checks BODY, then SMTPUTF8, then SIZE, whatever order they came in.
    const ordered = lastOfEach(params).sort((a, b) => rank(d, a.keyword) - rank(d, b.keyword));
    for (const { keyword, value } of ordered) {
      if (keyword === "BODY" && o.eightBitMime) {
        const upper = value?.toUpperCase();
        if (upper === "BINARYMIME" && o.binaryMime) body = upper;
        else if (upper === "7BIT" || upper === "8BITMIME") body = upper;
        else return d.reject(verb, o.binaryMime ? REPLIES.bodyValueBinary : REPLIES.bodyValue);
      } else if (keyword === "SMTPUTF8") {
        if (value !== null) return d.reject(verb, REPLIES.smtpUtf8Argument);
        if (!o.smtpUtf8) return d.reject(verb, REPLIES.smtpUtf8Disabled);
        smtpUtf8 = true;
      } else if (keyword === "SIZE") {
        if (value === null || !/^\d{1,20}$/.test(value)) {
          return d.reject(verb, TEMPLATES.syntax(verb, extended(d)));
        }
        size = Number(value);
        // RFC 1870: the announced size is checked here; the body itself in data.ts.
        if (o.dataSizeLimit > 0 && size > o.dataSizeLimit) {
          return d.reject(verb, REPLIES.sizeExceeded);
        }
      } else if (keyword === "RET" && o.dsn) {
        const upper = value?.toUpperCase();
        if (upper !== "FULL" && upper !== "HDRS") return d.reject(verb, REPLIES.retValue);
        ret = upper;
      } else if (keyword === "ENVID" && o.dsn) {
        const decoded = value === null ? null : decodeXtext(value);
        if (decoded === null || decoded.length > 100) return d.reject(verb, REPLIES.envidValue);
        envelopeId = decoded;
      } else if (keyword === "REQUIRETLS" && o.requireTlsParam && d.state.tls) {
        if (value !== null) return d.reject(verb, TEMPLATES.syntax(verb, extended(d)));
        requireTls = true;
      } else if (keyword === "AUTH" && offeredMechanisms(d).length > 0) {
        const parsed = parseAuthParam(value, o.smtpUtf8);
        if (parsed === null) return d.reject(verb, REPLIES.authParamValue);
        // RFC 4954 §5: from a client that has not authenticated, the value is accepted but
        // treated as <>; `trusted` says whether it may be believed.
        auth = { submitter: parsed.submitter, trusted: d.state.authenticated };
      } else if (keyword === "MT-PRIORITY" && o.mtPriority !== null) {
        mtPriority = parseMtPriority(value);
        if (mtPriority === null) return d.reject(verb, REPLIES.mtPriorityValue);
      } else if (keyword === "BY" && o.deliverByMinimum !== null) {
        deliverBy = parseDeliverBy(value);
        if (deliverBy === null) return d.reject(verb, REPLIES.deliverByValue);
        if (deliverBy.mode === "R" && deliverBy.seconds < o.deliverByMinimum) {
          return d.reject(verb, REPLIES.deliverByTooShort);
        }
      } else if ((keyword === "HOLDFOR" || keyword === "HOLDUNTIL") && o.futureRelease) {
        if (keyword === "HOLDFOR") holdFor = parseHoldFor(value);
        else holdUntil = parseHoldUntil(value);
        if ((keyword === "HOLDFOR" ? holdFor : holdUntil) === null) {
          return d.reject(verb, REPLIES.holdValue);
        }
      } else if (!o.mailParameters.has(keyword)) {
        return d.reject(verb, REPLIES.mailParams);
      }
    }
    const release = o.futureRelease;
    let futureRelease: MailEvent["futureRelease"] = null;
    if (release && (holdFor !== null || holdUntil !== null)) {
      if (holdFor !== null && holdUntil !== null) return d.reject(verb, REPLIES.holdBoth);
      const now = release.now();
      const at = holdUntil ?? now + (holdFor ?? 0) * 1000;
      // A HOLDUNTIL already past releases at once; one beyond the maximum is refused.
      if (at - now > release.maxInterval * 1000) return d.reject(verb, REPLIES.holdTooLong);
      futureRelease = {
        holdFor,
        holdUntil: holdUntil === null ? null : new Date(holdUntil),
        releaseAt: new Date(at),
      };
    }
    d.await(
      { kind: "mail", address: path.address, binaryMime: body === "BINARYMIME" },
      {
        type: "mail",
        address: path.address,
        params,
        options: params.map(paramText),
        smtpUtf8,
        body,
        size,
        requireTls,
        dsn: o.dsn ? { ret, envelopeId } : null,
        auth,
        mtPriority,
        deliverBy,
        futureRelease,
      },
    );
  },
};

function rank(d: Dialog, keyword: string): number {
  if (keyword === "BODY" && d.options.eightBitMime) return 0;
  if (keyword === "SMTPUTF8") return 1;
  if (keyword === "SIZE") return 2;
  return 3;
}

export function paramText(param: EsmtpParam): string {
  return param.value === null ? param.keyword : `${param.keyword}=${param.value}`;
}

/** A repeated parameter: the last one wins, as in aiosmtpd (smtplib may send SMTPUTF8 twice). */
export function lastOfEach(params: readonly EsmtpParam[]): EsmtpParam[] {
  if (params.length < 2) return params as EsmtpParam[];
  return [...new Map(params.map((param) => [param.keyword, param])).values()];
}

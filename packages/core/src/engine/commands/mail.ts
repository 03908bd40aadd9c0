/**
 * MAIL FROM and its parameters: BODY (8BITMIME), SMTPUTF8, SIZE (the announced size against
 * `dataSizeLimit`), RET/ENVID (DSN), REQUIRETLS, and the program's own parameters.
 * COMMAND_RULES: greeting, auth, the path (`parse`), then no transaction may be open.
 */
import type { MailEvent } from "../../events.js";
import { parsePath, stripKeyword } from "../../syntax/address.js";
import { decodeXtext, type EsmtpParam, parseEsmtpParams } from "../../syntax/esmtp-params.js";
import type { Dialog } from "../dialog.js";
import { REPLIES, TEMPLATES } from "../replies.js";
import { addressOptions, type Command, extended, type Refusal, refuse } from "./command.js";

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
    // aiosmtpd checks BODY, then SMTPUTF8, then SIZE, whatever order they came in.
    const ordered = lastOfEach(params).sort((a, b) => rank(d, a.keyword) - rank(d, b.keyword));
    for (const { keyword, value } of ordered) {
      if (keyword === "BODY" && o.eightBitMime) {
        const upper = value?.toUpperCase();
        if (upper !== "7BIT" && upper !== "8BITMIME") return d.reject(verb, REPLIES.bodyValue);
        body = upper;
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
      } else if (!o.mailParameters.has(keyword)) {
        return d.reject(verb, REPLIES.mailParams);
      }
    }
    d.await(
      { kind: "mail", address: path.address },
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

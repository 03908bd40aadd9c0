/**
 * RCPT TO and its parameters: NOTIFY/ORCPT (DSN), RRVS and the program's own; the recipient limit.
 * COMMAND_RULES: greeting, auth, an open transaction, then the path (`parse`).
 */
import type { RcptEvent } from "../../events.js";
import { decodeXtext, parseEsmtpParams } from "../../syntax/esmtp-params.js";
import { parseRrvs } from "../../syntax/rrvs.js";
import { REPLIES, TEMPLATES } from "../replies.js";
import { type Command, extended } from "./command.js";
import { lastOfEach, type ParsedPath, paramText, parseCommandPath } from "./mail.js";

const NOTIFY_VALUES = new Set(["NEVER", "SUCCESS", "FAILURE", "DELAY"]);
type Dsn = NonNullable<RcptEvent["dsn"]>;

export const rcpt: Command<ParsedPath> = {
  parse: (d, verb, argument) => parseCommandPath(d, verb, argument, "TO:"),
  run(d, verb, _argument, path) {
    const params = parseEsmtpParams(path.rest);
    if (params === null) return d.reject(verb, TEMPLATES.syntax(verb, extended(d)));
    const o = d.options;
    let notify: Dsn["notify"] = null;
    let originalRecipient: Dsn["originalRecipient"] = null;
    let rrvs: RcptEvent["rrvs"] = null;
    for (const { keyword, value } of lastOfEach(params)) {
      if (keyword === "NOTIFY" && o.dsn) {
        const items = (value ?? "").toUpperCase().split(",");
        const valid =
          items.every((item) => NOTIFY_VALUES.has(item)) &&
          (!items.includes("NEVER") || items.length === 1);
        if (!valid) return d.reject(verb, REPLIES.notifyValue);
        notify = items as NonNullable<Dsn["notify"]>;
      } else if (keyword === "ORCPT" && o.dsn) {
        const semicolon = value?.indexOf(";") ?? -1;
        const decoded = value && semicolon > 0 ? decodeXtext(value.slice(semicolon + 1)) : null;
        if (!value || decoded === null) return d.reject(verb, REPLIES.orcptValue);
        originalRecipient = { type: value.slice(0, semicolon).toLowerCase(), address: decoded };
      } else if (keyword === "RRVS" && o.rrvs) {
        rrvs = parseRrvs(value);
        if (rrvs === null) return d.reject(verb, REPLIES.rrvsValue);
      } else if (!o.rcptParameters.has(keyword)) {
        return d.reject(verb, REPLIES.rcptParams);
      }
    }
    if (o.maxRecipients > 0 && d.state.recipients.length >= o.maxRecipients) {
      return d.reject(verb, REPLIES.tooManyRecipients);
    }
    d.await(
      { kind: "rcpt", address: path.address },
      {
        type: "rcpt",
        address: path.address,
        params,
        options: params.map(paramText),
        dsn: o.dsn ? { notify, originalRecipient } : null,
        rrvs,
      },
    );
  },
};

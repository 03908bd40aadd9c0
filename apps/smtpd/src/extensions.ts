/**
 * `--extensions LIST`: the off-by-default ESMTP parameter extensions, comma separated, each with
 * an optional value: `binarymime`, `mt-priority[=PROFILE]`, `deliverby[=MIN-SECONDS]`,
 * `futurerelease[=MAX-SECONDS]`, `rrvs`. Pure: a usage error names the bad item.
 */
import type { Extensions } from "@smtpkit/core";

export const EXTENSION_NAMES = [
  "binarymime",
  "mt-priority",
  "deliverby",
  "futurerelease",
  "rrvs",
] as const;

export const EXTENSIONS_HELP = `ESMTP extensions to offer, comma separated: binarymime (RFC 3030, BODY=BINARYMIME by BDAT), mt-priority[=PROFILE] (RFC 6710), deliverby[=MIN-SECONDS] (RFC 2852), futurerelease[=MAX-SECONDS] (RFC 4865, default 604800), rrvs (RFC 7293)`;

/** The extension options a list turns on; throws `Error` with the message for a bad item. */
export function parseExtensionList(list: string): Extensions {
  const extensions: {
    binaryMime?: boolean;
    mtPriority?: boolean | string;
    deliverBy?: boolean | { minimum: number };
    futureRelease?: boolean | { maxInterval: number };
    rrvs?: boolean;
  } = {};
  const items = list
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (items.length === 0) throw new Error(`expected one of ${EXTENSION_NAMES.join(", ")}`);
  for (const item of items) {
    const eq = item.indexOf("=");
    const name = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? null : item.slice(eq + 1);
    const seconds = (max: number, min: number): number => {
      if (
        value === null ||
        !/^\d{1,9}$/.test(value) ||
        Number(value) < min ||
        Number(value) > max
      ) {
        throw new Error(`${name}=${value ?? ""}: expected whole seconds from ${min} to ${max}`);
      }
      return Number(value);
    };
    const flag = (): true => {
      if (value !== null) throw new Error(`${name} takes no value`);
      return true;
    };
    switch (name) {
      case "binarymime":
        extensions.binaryMime = flag();
        break;
      case "mt-priority":
        if (value !== null && !/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(value)) {
          throw new Error(`mt-priority=${value}: expected a profile name such as MIXER`);
        }
        extensions.mtPriority = value === null ? true : value.toUpperCase();
        break;
      case "deliverby":
        extensions.deliverBy = value === null ? true : { minimum: seconds(999_999_999, 0) };
        break;
      case "futurerelease":
        extensions.futureRelease = value === null ? true : { maxInterval: seconds(999_999_999, 1) };
        break;
      case "rrvs":
        extensions.rrvs = flag();
        break;
      default:
        throw new Error(`unknown extension ${name}; choose from ${EXTENSION_NAMES.join(", ")}`);
    }
  }
  return extensions;
}

/** The start-up line's words for them, e.g. `BINARYMIME, DELIVERBY 60`. */
export function describeExtensions(extensions: Extensions): string[] {
  const words: string[] = [];
  if (extensions.binaryMime) words.push("BINARYMIME");
  const priority = extensions.mtPriority;
  if (priority)
    words.push(typeof priority === "string" ? `MT-PRIORITY ${priority}` : "MT-PRIORITY");
  const by = extensions.deliverBy;
  if (by)
    words.push(typeof by === "object" && by.minimum ? `DELIVERBY ${by.minimum}` : "DELIVERBY");
  const release = extensions.futureRelease;
  if (release) {
    const max = typeof release === "object" ? release.maxInterval : undefined;
    words.push(max === undefined ? "FUTURERELEASE" : `FUTURERELEASE ${max}`);
  }
  if (extensions.rrvs) words.push("RRVS");
  return words;
}

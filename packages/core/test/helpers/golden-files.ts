/// <reference types="vite/client" />
/**
 * The golden transcripts (test/golden/*.smtp), loaded through Vite so the tests need no file-system
 * access, and the named policies their `@policy` lines refer to.
 */
import { type GoldenSection, type Policy, parseGolden, policy } from "./dialog.js";

const FILES = import.meta.glob<string>("../golden/*.smtp", {
  query: "?raw",
  import: "default",
  eager: true,
});

export const GOLDEN_FILES: ReadonlyMap<string, string> = new Map(
  Object.entries(FILES)
    .map(([path, text]) => [path.replace(/^.*\//, ""), text] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1)),
);

export const GOLDEN_SECTIONS: readonly GoldenSection[] = [...GOLDEN_FILES].flatMap(([file, text]) =>
  parseGolden(file, text),
);

/** Policies a section can select with `@policy name`. */
export const GOLDEN_POLICIES: Readonly<Record<string, Policy>> = {
  /** LMTP: refuse nobody@ at RCPT; after the body, 452 for full@ and 250 for the others. */
  "lmtp-per-recipient": policy({
    rcpt: (event, conn) => {
      if (event.type === "rcpt" && event.address.startsWith("nobody@"))
        conn.reply("550 5.1.1 No such user");
      else conn.accept();
    },
    bodyEnd: (event, conn) => {
      if (event.type !== "bodyEnd") throw new Error("unreachable");
      conn.replyPerRecipient(
        event.recipients.map((rcpt) =>
          rcpt.startsWith("full@")
            ? `452 4.2.2 <${rcpt}> mailbox full`
            : `250 2.0.0 <${rcpt}> delivered`,
        ),
      );
    },
  }),
  "reject-proxy": policy({ proxyHeader: (_event, conn) => void conn.rejectProxy() }),
};

export function policyFor(section: GoldenSection): Policy | undefined {
  if (section.policy === null) return undefined;
  const found = GOLDEN_POLICIES[section.policy];
  if (!found) throw new Error(`${section.file}: unknown policy ${section.policy}`);
  return found;
}

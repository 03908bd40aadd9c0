import { fc, test } from "@fast-check/vitest";
import type { SaslContext, SaslMechanism, SaslStep } from "@smtpkit/core";
import { describe, expect } from "vitest";
import { cramMd5 } from "../src/mechanisms/cram-md5.js";
import { external } from "../src/mechanisms/external.js";
import { oauthBearer } from "../src/mechanisms/oauthbearer.js";
import { scramSha1, scramSha1Plus, scramSha256, scramSha256Plus } from "../src/mechanisms/scram.js";
import { xoauth2 } from "../src/mechanisms/xoauth2.js";
import { scramStoredKey } from "../src/scram-keys.js";
import type { VerdictAwareExchange } from "../src/types.js";
import { CLEAR, enc, tlsContext } from "./helpers.js";

const key256 = await scramStoredKey("pw", { iterations: 64 });
const key1 = await scramStoredKey("pw", { hash: "SHA-1", iterations: 64 });

const MECHANISMS: [string, () => SaslMechanism][] = [
  ["CRAM-MD5", () => cramMd5()],
  ["SCRAM-SHA-1", () => scramSha1({ lookup: () => key1, plusOffered: true })],
  ["SCRAM-SHA-256", () => scramSha256({ lookup: () => key256 })],
  ["SCRAM-SHA-1-PLUS", () => scramSha1Plus({ lookup: () => key1 })],
  ["SCRAM-SHA-256-PLUS", () => scramSha256Plus({ lookup: (u) => (u === "u" ? key256 : null) })],
  ["XOAUTH2", () => xoauth2()],
  ["XOAUTH2 verify", () => xoauth2({ verify: (c) => c.token === "t" })],
  ["OAUTHBEARER", () => oauthBearer()],
  ["OAUTHBEARER verify", () => oauthBearer({ verify: () => false })],
  ["EXTERNAL", () => external()],
  ["EXTERNAL trust", () => external({ trustCertificate: true })],
];

/** Responses that look like the mechanisms' messages, mutated, plus arbitrary bytes. */
const fragment = fc.constantFrom(
  "n,,",
  "y,,",
  "p=tls-exporter,,",
  "p=tls-server-end-point,,",
  "n,a=u,",
  "n=u",
  "r=abc",
  "c=biws",
  "p=AAAA",
  "m=x",
  ",",
  "=",
  "=2C",
  "=3D",
  "\x01",
  "\x01\x01",
  "user=u",
  "auth=Bearer t",
  "host=h",
  "port=25",
  "u 0123456789abcdef0123456789abcdef",
  "",
  " ",
  "\0",
  "é",
  "\ud800",
);
const response = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.array(fragment, { maxLength: 8 }).map((parts) => enc(parts.join(""))),
  fc.constant(null),
);
const contexts: SaslContext[] = [
  CLEAR,
  tlsContext(),
  tlsContext({ peerCertificate: { subject: { CN: "u" } }, authorized: true }),
  tlsContext({
    exportKeyingMaterial: () => {
      throw new Error("x");
    },
  }),
];

function validStep(step: SaslStep): boolean {
  switch (step.type) {
    case "challenge":
      return step.challenge instanceof Uint8Array;
    case "failure":
      return step.reply === undefined || /^[45]\d\d /.test(step.reply);
    case "credentials":
    case "success":
      return true;
    default:
      return false;
  }
}

describe("random client responses never throw (every mechanism)", () => {
  for (const [name, make] of MECHANISMS) {
    test.prop(
      [
        fc.array(response, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...contexts),
        fc.boolean(),
      ],
      { numRuns: 150 },
    )(name, async (responses, context, verdictOk) => {
      const exchange = make().start(context) as VerdictAwareExchange;
      let ended = false;
      for (const [i, r] of responses.entries()) {
        let step = await exchange.step(i === 0 ? r : (r ?? new Uint8Array(0)));
        expect(validStep(step)).toBe(true);
        if (step.type === "credentials" && exchange.verdict) {
          step = await exchange.verdict(verdictOk ? { success: true } : { success: false });
          expect(validStep(step)).toBe(true);
        }
        if (ended) expect(step.type).toBe("failure");
        if (step.type === "failure" || step.type === "success" || step.type === "credentials")
          ended = true;
      }
    });
  }
});

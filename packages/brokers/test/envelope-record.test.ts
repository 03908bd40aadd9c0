import { fc, test } from "@fast-check/vitest";
import { Envelope, Session } from "@smtpkit/core/server";
import { expect } from "vitest";
import { envelopeRecord, parseEnvelopeRecord } from "../src/index.js";

const address = fc.stringMatching(/^[a-z0-9.+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}$/);

test.prop([fc.option(address, { nil: null }), fc.array(address, { maxLength: 20 }), fc.boolean()])(
  "an envelope record survives the header round trip",
  (mailFrom, rcptTos, smtpUtf8) => {
    const session = new Session(
      { address: "192.0.2.1", port: 4000, family: "IPv4" } as never,
      null,
      new AbortController().signal,
    );
    session.hostName = "client.example";
    const envelope = new Envelope();
    envelope.mailFrom = mailFrom;
    envelope.rcptTos = rcptTos;
    envelope.smtpUtf8 = smtpUtf8;
    const record = envelopeRecord(session, envelope);
    expect(parseEnvelopeRecord(JSON.stringify(record))).toEqual(record);
    expect(record.peer).toEqual({ address: "192.0.2.1", port: 4000, family: "IPv4" });
  },
);

test.prop([fc.string({ maxLength: 200 })])(
  "any other header value is refused, never accepted",
  (text) => {
    let parsed: unknown = null;
    try {
      parsed = parseEnvelopeRecord(text);
    } catch (error) {
      expect(error).toBeInstanceOf(Error);
      expect(["SyntaxError", "TypeError"]).toContain((error as Error).name);
      return;
    }
    expect(Array.isArray((parsed as { rcptTos: unknown }).rcptTos)).toBe(true);
  },
);

import { fc, test as property } from "@fast-check/vitest";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { partsOf } from "../src/mailpit-json.js";
import { MimeScanner, parseParams } from "../src/mime-index.js";

function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    new MailComposer(options)
      .compile()
      .build((error, message) => (error ? reject(error) : resolve(message))),
  );
}

function scan(raw: Uint8Array, cuts: readonly number[] = []) {
  const scanner = new MimeScanner();
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    scanner.push(raw.subarray(at, cut));
    at = cut;
  }
  scanner.push(raw.subarray(at));
  return scanner.end();
}

const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

const samples = {
  "text only": { from: "a@example.com", to: "b@example.com", subject: "plain", text: "hello" },
  "text, html, two attachments and an inline image": {
    from: "a@example.com",
    to: "b@example.com",
    subject: "rich",
    text: "hello",
    html: '<p>hi <img src="cid:logo@example"></p>',
    attachments: [
      { filename: "report.csv", content: "a,b\n1,2\n" },
      {
        filename: "naïve résumé.pdf",
        content: Buffer.alloc(10_000, 1),
        contentType: "application/pdf",
      },
      { filename: "logo.png", content: png, cid: "logo@example" },
    ],
  },
  "a big base64 attachment": {
    from: "a@example.com",
    to: "b@example.com",
    subject: "big",
    text: "see attached",
    attachments: [{ filename: "blob.bin", content: Buffer.alloc(300_000, 7) }],
  },
  "a quoted-printable text attachment": {
    from: "a@example.com",
    to: "b@example.com",
    subject: "qp",
    text: "x",
    attachments: [
      {
        filename: "notes.txt",
        content: "caf\u00e9 ".repeat(100),
        contentTransferEncoding: "quoted-printable",
      },
    ],
  },
} satisfies Record<string, ConstructorParameters<typeof MailComposer>[0]>;

describe("the streaming MIME scanner", () => {
  it.each(Object.entries(samples))("finds what postal-mime finds: %s", async (_name, options) => {
    const raw = await compose(options);
    const expected = partsOf(await PostalMime.parse(raw)).map((p) => ({
      fileName: p.FileName,
      contentType: p.ContentType,
      contentId: p.ContentID,
      disposition: p.Disposition,
      size: p.Size,
    }));
    const found = scan(raw);
    // Sizes: base64 exactly; other transfer encodings as sent (quoted-printable is larger).
    expect(found.map(({ size: _s, ...rest }) => rest)).toEqual(
      expected.map(({ size: _s, ...rest }) => rest),
    );
    for (const [i, part] of found.entries()) {
      const want = expected[i]?.size ?? 0;
      expect(part.size).toBeGreaterThanOrEqual(want);
      expect(part.size).toBeLessThanOrEqual(want * 4 + 16);
    }
  });

  it("counts base64 sizes exactly", async () => {
    const raw = await compose(samples["a big base64 attachment"]);
    expect(scan(raw)).toEqual([
      {
        fileName: "blob.bin",
        contentType: "application/octet-stream",
        contentId: "",
        disposition: "attachment",
        size: 300_000,
      },
    ]);
  });

  it("parameters: quoted, RFC 2231 (with continuations) and RFC 2047", () => {
    expect(parseParams('attachment; filename="a;b.txt"').params.filename).toBe("a;b.txt");
    expect(parseParams("attachment; filename*=utf-8''na%C3%AFve.txt").params.filename).toBe(
      "naïve.txt",
    );
    expect(
      parseParams("attachment; filename*0*=utf-8''na%C3%AF; filename*1=ve.txt").params.filename,
    ).toBe("naïve.txt");
    expect(parseParams('attachment; filename="=?utf-8?B?bmHDr3ZlLnR4dA==?="').params.filename).toBe(
      "naïve.txt",
    );
  });

  let rich: Buffer;
  it("composes the sample for the split property", async () => {
    rich = await compose(samples["text, html, two attachments and an inline image"]);
    expect(scan(rich)).toHaveLength(3);
  });
  property.prop([fc.array(fc.nat(), { maxLength: 12 })])(
    "any split of the input gives the same result",
    (cuts) => {
      const raw = rich;
      expect(
        scan(
          raw,
          cuts.map((c) => c % raw.length),
        ),
      ).toEqual(scan(raw));
    },
  );

  property.prop([fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 5 })])(
    "random bytes never throw",
    (bytes, cuts) => {
      expect(() =>
        scan(
          bytes,
          cuts.map((c) => c % (bytes.length + 1)),
        ),
      ).not.toThrow();
    },
  );

  property.prop([
    fc.array(
      fc.constantFrom(
        "--b\r\n",
        "--b--\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n",
        "\r\n",
        "x\r\n",
        "Content-Disposition: attachment\r\n",
        "--c\r\n",
      ),
      {
        maxLength: 60,
      },
    ),
  ])("MIME-shaped garbage never throws and stays bounded", (lines) => {
    const parts = scan(new TextEncoder().encode(lines.join("")));
    expect(parts.length).toBeLessThanOrEqual(1000);
  });
});

// Bun runner for the shared runtime cases: `bun test ./runtime/bun.test.ts` (always pass the path:
// a bare `bun test` would also pick up the vitest files in test/).
import { expect, test } from "bun:test";
import { ServerConnection } from "../dist/index.js";
import { cases } from "./shared-cases.mjs";

interface SharedCase {
  readonly name: string;
  readonly run: () => void | Promise<void>;
}

for (const testCase of cases as readonly SharedCase[]) {
  test(testCase.name, async () => {
    await testCase.run();
  });
}

test("typed use of the built module", () => {
  const conn = new ServerConnection({ hostname: "bun.example" });
  conn.receiveData(new TextEncoder().encode("EHLO c\r\nQUIT\r\n"));
  const seen: string[] = [];
  for (
    let event = conn.nextEvent();
    event.type !== "needData" && event.type !== "closed";
    event = conn.nextEvent()
  ) {
    seen.push(event.type);
    if (event.type === "hello" || event.type === "quit") conn.accept();
  }
  expect(seen).toEqual(["hello", "quit"]);
  const out = new TextDecoder().decode(conn.dataToSend());
  expect(out.startsWith("220 bun.example smtpkit\r\n")).toBe(true);
  expect(out.endsWith("221 2.0.0 Bye\r\n")).toBe(true);
});

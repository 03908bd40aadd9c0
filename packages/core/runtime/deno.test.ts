// Deno runner for the shared runtime cases: `deno test --allow-read runtime/deno.test.ts`.
//
// Types: Deno type-checks this file against the built JS; each dist entry also has a
// self-contained .d.ts (one declarations build per entry), which Deno reads without flags.
import { ServerConnection } from "../dist/index.js";
import { cases } from "./shared-cases.mjs";

interface SharedCase {
  readonly name: string;
  readonly run: () => void | Promise<void>;
}

for (const testCase of cases as readonly SharedCase[]) {
  Deno.test(testCase.name, async () => {
    await testCase.run();
  });
}

Deno.test("typed use of the built module", () => {
  const conn = new ServerConnection({ hostname: "deno.example" });
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
  const out = new TextDecoder().decode(conn.dataToSend());
  if (
    seen.join() !== "hello,quit" ||
    !out.startsWith("220 deno.example smtpkit\r\n") ||
    !out.endsWith("221 2.0.0 Bye\r\n")
  ) {
    throw new Error(`unexpected dialog: ${seen.join()} ${JSON.stringify(out)}`);
  }
});

import { it } from "vitest";
import { transcript, dialog, latin1, bin } from "./helpers/dialog.js";
import { DataReader } from "../src/data-reader.js";
const pre = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
it("x", () => {
  for (const le of ["reject", "normalize", "allow"] as const) {
    for (const body of ["a\nb\r\n.\r\n", "ab\r\n.\r\n", "a\rb\r\n.\r\n", "\r\n.\r\n", "x\r\n.\r\n"]) {
      const r = new DataReader({maxSize: 0, maxLineLength: 1001, lineEndings: le});
      const out: Uint8Array[] = [];
      const used = r.feed(bin(body), out);
      console.log(le, JSON.stringify(body), used, r.done, r.error, JSON.stringify(out.map(latin1)));
    }
  }
  let d = dialog(["NOOP " + "x".repeat(1<<20) + "\r\nNOOP\r\n"]); console.log(d.replyLines, d.maxBuffered);
  d = dialog(["NOOP " + "x".repeat(3000) , "x".repeat(3000) + "\r\nNOOP\r\n"]); console.log(d.replyLines, d.maxBuffered);
});

import { it } from "vitest";
import { transcript, dialog } from "./helpers/dialog.js";
it("x", () => {
  const auth = { mechanisms: ["PLAIN", "LOGIN"] };
  console.log(transcript(["AUTH PLAIN", "HELO h", "AUTH PLAIN", "EHLO e", "AUTH PLAIN", "QUIT"], {options:{auth}}));
  console.log(transcript(["EHLO e", "AUTH", "AUTH a b c", "AUTH FOO", "AUTH plain ???", "AUTH plain =", "AUTH PLAIN", "*", "AUTH PLAIN", "!!", "AUTH PLAIN", "AHVzZXIAcGFzc3dvcmQ=", "AUTH PLAIN", "MAIL FROM:<a@b>"], {options:{auth:{...auth, requireTls:false}}}));
  console.log(transcript(["EHLO e", "AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=", "AUTH PLAIN"], {options:{auth:{...auth}, implicitTls: true}}));
  console.log(transcript(["HELP", "MAIL FROM:<a@b>", "VRFY x", "NOOP", "EHLO e", "MAIL FROM:<a@b>", "RCPT TO:<a@b>", "DATA", "HELP", "VRFY a", "BDAT 1", "RSET", "QUIT"], {options:{auth:{...auth, required: true}}}));
  console.log(transcript(["HELO h", "HELP", "MAIL FROM:<a@b>", "FOO", "VRFY x", "NOOP", "LHLO x", "EHLO e", "STARTTLS x", "STARTTLS", "NOOP"], {options:{startTls: true, requireStartTls: true}}));
  console.log(transcript(["STARTTLS"]));
  console.log(transcript(["NOOP", "NOOP", "NOOP", "QUIT"], {options:{commandCallLimit: 2}}));
  console.log(transcript(["NOOP", "NOOP", "FOO", "FOO", "FOO"], {options:{commandCallLimit: {"NOOP": 1, "*": 2}}}));
});

import { it } from "vitest";
import { transcript, dialog } from "./helpers/dialog.js";
it("x", () => {
  console.log(transcript(["HELO h", "EHLO e", "LHLO l", "HELP", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>", "DATA", "hi", ".", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>", "BDAT 4 LAST", "abcd", "QUIT"], {options:{lmtp: true}}));
  console.log(transcript(["EHLO e", "BDAT 1", "BDAT", "BDAT x", "BDAT 1 FOO","MAIL FROM:<a@b> SIZE=100", "RCPT TO:<c@d>", "BDAT 3", "ab", "BDAT 11 LAST", "0123456789", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT 8", "1234567", "BDAT 3 LAST", "x", "BDAT 3 last", "xx", "QUIT"], {options:{dataSizeLimit: 10}}));
  console.log(transcript(["EHLO e", "MAIL FROM:<a@b> SIZE=11", "MAIL FROM:<a@b> SIZE=10 SMTPUTF8", "MAIL FROM:<a@b> SMTPUTF8=x", "MAIL FROM:<a@b> FOO=1", "MAIL FROM:<a@b> SIZE=x", "MAIL FROM:<a@b> SIZE=", "MAIL FROM:<a@b> BODY", "MAIL FROM:<a@b> BODY=7bit"], {options:{dataSizeLimit: 10}}));
  console.log(transcript(["EHLO e", "MAIL FROM:<a@b> SMTPUTF8", "RSET", "MAIL FROM:<a@b> SMTPUTF8=x"], {options:{extensions:{smtpUtf8:true}}}));
  console.log(transcript(["EHLO e", "MAIL FROM:<a@b> RET=FULL ENVID=abc+2Bd", "RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d", "RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS", "RCPT TO:<c@d> NOTIFY=FOO","RCPT TO:<c@d> ORCPT=foo", "RCPT TO:<c@d> ORCPT=rfc822;a+zz", "RSET", "MAIL FROM:<a@b> RET=X", "MAIL FROM:<a@b> ENVID=a+zz", "MAIL FROM:<a@b> RET=HDRS RET=FULL"], {options:{extensions:{dsn:true}}}));
  console.log(transcript(["EHLO e", "MAIL FROM:<a@b> RET=FULL", "MAIL FROM:<a@b> ENVID=x", "MAIL FROM:<a@b>", "RCPT TO:<c@d> NOTIFY=SUCCESS"]));
  console.log(transcript(["PROXY TCP4 1.2.3.4 5.6.7.8 111 222", "EHLO x"], {options:{proxyProtocol:true}}));
  console.log(transcript(["PROXY garbage", "EHLO x"], {options:{proxyProtocol:true}}));
  console.log(JSON.stringify(dialog("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\nEHLO x\r\n", {options:{proxyProtocol:true}}).events).slice(0,600));
});

// Sends one message with Nodemailer and prints the outcome as one JSON line. The compliance suite
// runs it with Node in a child process, so the client is the same whatever runtime the server is on.
//
//   node nodemailer-client.mjs '{"host":"127.0.0.1","port":2525,"from":"a@x","to":["b@y"],...}'
//
// Job keys: host, port, secure (SMTPS), requireTLS, ignoreTLS, lmtp, ca (PEM: the certificate is
// verified against it, for the name "localhost"), auth {user, pass}, authMethod, from, to, subject,
// text. Output: {"ok":true,"accepted":[...],"rejected":[...],"response":"..."} or
// {"ok":false,"error":{"message","code","responseCode","response"}}.
import nodemailer from "nodemailer";

const job = JSON.parse(process.argv[2] ?? "{}");
const transport = nodemailer.createTransport({
  host: job.host,
  port: job.port,
  secure: job.secure ?? false,
  requireTLS: job.requireTLS ?? false,
  ignoreTLS: job.ignoreTLS ?? false,
  lmtp: job.lmtp ?? false,
  name: "client.compliance.test",
  ...(job.auth ? { auth: job.auth } : {}),
  ...(job.authMethod ? { authMethod: job.authMethod } : {}),
  tls: job.ca ? { ca: job.ca, servername: "localhost" } : { rejectUnauthorized: false },
  connectionTimeout: 10_000,
  greetingTimeout: 10_000,
  socketTimeout: 30_000,
});
try {
  const info = await transport.sendMail({
    from: job.from,
    to: job.to,
    subject: job.subject,
    text: job.text,
  });
  const show = (list) => (list ?? []).map(String);
  console.log(
    JSON.stringify({
      ok: true,
      accepted: show(info.accepted),
      rejected: show(info.rejected),
      response: info.response ?? "",
    }),
  );
} catch (error) {
  console.log(
    JSON.stringify({
      ok: false,
      error: {
        message: String(error?.message ?? error),
        code: error?.code ?? null,
        responseCode: error?.responseCode ?? null,
        response: error?.response ?? null,
        rejected: error?.rejected ?? null,
      },
    }),
  );
} finally {
  transport.close();
}

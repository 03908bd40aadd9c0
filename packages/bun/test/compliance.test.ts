// The adapter compliance suite on Bun: `bun test ./test/compliance.test.ts`. The server runs from
// src/; the client side uses Bun.connect, and the real clients run in child processes.
import { test } from "bun:test";
import { complianceCases, registerCases } from "@smtpkit/compliance";
import { bunRuntime } from "@smtpkit/compliance/bun";
import { serve } from "../src/index.ts";

const skip = {
  "SNI: a certificate per host name, *.domain wildcards, the default otherwise; session.ssl.servername":
    "Bun.listen and socket.upgradeTLS take one certificate and no SNI callback",
};
registerCases(complianceCases({ serve, runtime: bunRuntime, skip }), test);

// The adapter compliance suite on Deno: `deno test` (see the test:deno script for the flags).
// The server runs from src/ (checked by Deno itself); the client side uses Deno.connect, and the
// real clients (Nodemailer, smtplib) run in child processes.
import { complianceCases } from "@smtpkit/compliance";
import { denoRuntime, registerDenoTests } from "@smtpkit/compliance/deno";
import { serve } from "../src/index.ts";

registerDenoTests(complianceCases({ serve, runtime: denoRuntime }));

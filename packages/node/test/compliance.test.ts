// The adapter compliance suite (@smtpkit/compliance) on Node, under vitest. It is imported from
// source so this test needs no build of the suite first; the Deno and Bun adapters run the same
// cases under `deno test` and `bun test`.
import { test } from "vitest";
import { complianceCases, registerCases } from "../../compliance/src/index.js";
import { nodeRuntime } from "../../compliance/src/node.js";
import { serve } from "../src/index.js";

registerCases(complianceCases({ serve, runtime: nodeRuntime, node: process.execPath }), test);

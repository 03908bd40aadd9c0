// Prints the engine's state machine (states.ts TRANSITIONS) as a Mermaid stateDiagram-v2, from
// the built package: `npm run build && node scripts/state-diagram.mjs`. packages/core/README.md's
// "Engine" diagram is this output (test/state-diagram.test.ts keeps them equal).
// `--rules` prints the COMMAND_RULES table as Markdown instead.
import { commandTable, stateDiagram } from "../dist/index.js";

process.stdout.write(process.argv.includes("--rules") ? commandTable() : stateDiagram());

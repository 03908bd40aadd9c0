export { type CliHandlerClass, type TextOutput, UsageError } from "./cli.js";
export { Debugging } from "./debugging.js";
export { splitByteLines, splitTextLines } from "./lines.js";
export { pyListRepr, pyPeerRepr, pyStrRepr } from "./python-repr.js";
export { Sink } from "./sink.js";

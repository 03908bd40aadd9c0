// smtpkit with an observer that only keeps the CPU busy for 3 µs per message (see
// smtpkit-observed.mjs): the observability scenario's control, what that much work costs there.
import { start } from "./smtpkit-observed.mjs";

await start("busy3");

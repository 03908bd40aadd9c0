// smtpkit with the observer "logs-sync" (see smtpkit-observed.mjs).
import { start } from "./smtpkit-observed.mjs";

await start("logs-sync");

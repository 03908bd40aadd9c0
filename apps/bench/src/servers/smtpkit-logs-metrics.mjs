// smtpkit with the observer "logs,metrics" (see smtpkit-observed.mjs).
import { start } from "./smtpkit-observed.mjs";

await start("logs,metrics");

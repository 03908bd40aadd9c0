// smtpkit with the observer "metrics" (see smtpkit-observed.mjs).
import { start } from "./smtpkit-observed.mjs";

await start("metrics");

// smtpkit with the observer "logs" (see smtpkit-observed.mjs).
import { start } from "./smtpkit-observed.mjs";

await start("logs");

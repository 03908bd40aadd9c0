/**
 * `-c HANDLER [CLASSARGS...]` → a handler object: aiosmtpd's `parseargs()` handler loading
 * (`from_cli` when the class has it, else a plain constructor call that takes no arguments).
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { JetStream } from "@smtpkit/brokers";
import type { Handler } from "@smtpkit/core/server";
import { Debugging, Mailbox, Sink, SmtpProxy, UsageError } from "@smtpkit/handlers";
import { CliUsageError } from "./options.js";

type HandlerFactory = { fromCli(args: readonly string[]): Handler | Promise<Handler> };

/**
 * aiosmtpd's abstract handlers (`Message`, `AsyncMessage`) cannot be used as they are: say so, and
 * how to use them, instead of "unknown handler".
 */
function abstractHandler(name: string): HandlerFactory {
  return {
    fromCli(): never {
      throw new UsageError(
        `${name} is an abstract handler: subclass it (handleMessage) in a module and pass -c ./my-handler.js`,
      );
    },
  };
}

/** Built-in handler names; aiosmtpd's dotted paths are accepted too, to ease moving over. */
export const BUILTIN_HANDLERS: Readonly<Record<string, HandlerFactory>> = {
  Debugging,
  Sink,
  Mailbox,
  Proxy: SmtpProxy,
  JetStream,
  Message: abstractHandler("Message"),
  AsyncMessage: abstractHandler("AsyncMessage"),
  "aiosmtpd.handlers.Debugging": Debugging,
  "aiosmtpd.handlers.Sink": Sink,
  "aiosmtpd.handlers.Mailbox": Mailbox,
  "aiosmtpd.handlers.Proxy": SmtpProxy,
  "aiosmtpd.handlers.Message": abstractHandler("Message"),
  "aiosmtpd.handlers.AsyncMessage": abstractHandler("AsyncMessage"),
};

/** The names listed in "unknown handler" errors: the usable built-ins. */
const LISTED_HANDLERS = ["Debugging", "Sink", "Mailbox", "Proxy", "JetStream"];

export interface LoadedHandler {
  readonly handler: Handler;
  /** Short name for the "listening" line: `Debugging`, `./my-handler.js`. */
  readonly label: string;
}

export interface LoadOptions {
  /** Module paths are relative to this directory. */
  readonly cwd: string;
  /** Module loader (tests may stub it); default: dynamic `import()` of the file URL. */
  readonly importModule?: (url: string) => Promise<Record<string, unknown>>;
}

/** Whether `-c` names a file rather than a built-in (`./h.js`, `lib/h.mjs`, `/abs/h.cjs`). */
export function looksLikePath(name: string): boolean {
  return /[\\/]/.test(name) || /\.[cm]?[jt]s$/i.test(name) || name.startsWith(".");
}

/** A TypeScript source file, which Node runs only with type stripping (22.6+ behind a flag). */
function isTypeScript(path: string): boolean {
  return /\.[cm]?ts$/i.test(path);
}

const errorCode = (error: unknown): string =>
  (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/**
 * `-c Mailbox DIR`: creates the Maildir's directories one level at a time, so a directory that
 * cannot exist is a one-line error naming it (Node's recursive mkdir never returns for some paths,
 * e.g. under /proc).
 */
export function prepareMaildir(dir: string, cwd: string): void {
  const root = resolve(cwd, dir);
  const missing: string[] = [];
  let existing = root;
  while (!existsSync(existing)) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  if (existsSync(existing) && !statSync(existing).isDirectory()) {
    throw new CliUsageError(
      `Mailbox directory ${dir} cannot be created: ${existing} is not a directory`,
    );
  }
  try {
    for (const path of missing) mkdirSync(path, { mode: 0o700 });
    for (const sub of ["tmp", "new", "cur"]) {
      const path = join(root, sub);
      if (!existsSync(path)) mkdirSync(path, { mode: 0o700 });
    }
  } catch (error) {
    throw new CliUsageError(`Mailbox directory ${dir} cannot be created (${errorCode(error)})`);
  }
  try {
    accessSync(join(root, "tmp"), constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new CliUsageError(`Mailbox directory ${dir} is not writable (${errorCode(error)})`);
  }
}

/** `MODULE#EXPORT` → the module path and the export's name. */
export function splitExport(spec: string): { path: string; exportName: string | null } {
  const match = /^(.+)#([A-Za-z_$][\w$]*)$/.exec(spec);
  return match?.[1] && match[2]
    ? { path: match[1], exportName: match[2] }
    : { path: spec, exportName: null };
}

function isFactory(value: unknown): value is HandlerFactory {
  return (
    (typeof value === "function" || (typeof value === "object" && value !== null)) &&
    typeof (value as { fromCli?: unknown }).fromCli === "function"
  );
}

/**
 * Turns an export into a handler: `fromCli(args)` when it has one; otherwise a class is
 * constructed without arguments and an object is used as it is, and any CLASSARGS are an error
 * (`Handler class X takes no arguments`, X being the module as aiosmtpd prints it).
 */
export async function instantiate(
  value: unknown,
  args: readonly string[],
  moduleName: string,
): Promise<Handler> {
  if (isFactory(value)) {
    const handler = await value.fromCli(args);
    if ((typeof handler !== "object" && typeof handler !== "function") || handler === null) {
      throw new CliUsageError(`${moduleName}: fromCli() did not return a handler`);
    }
    return handler;
  }
  if (args.length > 0) throw new CliUsageError(`Handler class ${moduleName} takes no arguments`);
  if (typeof value === "function") {
    try {
      return new (value as new () => Handler)();
    } catch (error) {
      throw new CliUsageError(
        `Handler class ${moduleName} cannot be constructed: ${(error as Error).message}`,
      );
    }
  }
  if (typeof value === "object" && value !== null) return value as Handler;
  throw new CliUsageError(`Handler module ${moduleName} does not export a handler object or class`);
}

/** Picks the export: `#NAME`, else `default`, else `handler`. */
function pickExport(
  namespace: Record<string, unknown>,
  exportName: string | null,
  moduleName: string,
): unknown {
  if (exportName !== null) {
    if (!(exportName in namespace) || namespace[exportName] === undefined) {
      throw new CliUsageError(`Handler module ${moduleName} has no export "${exportName}"`);
    }
    return namespace[exportName];
  }
  const fallback = namespace.handler;
  const main = namespace.default;
  // A CommonJS `module.exports = { handler }` arrives as both `default` (the exports object) and
  // a named `handler`: the named one is meant.
  const cjsWrapper =
    fallback !== undefined &&
    typeof main === "object" &&
    main !== null &&
    (main as { handler?: unknown }).handler === fallback;
  if (main !== undefined && !cjsWrapper) return main;
  if (fallback !== undefined) return fallback;
  throw new CliUsageError(`Handler module ${moduleName} has no default or "handler" export`);
}

/** Loads `-c NAME` with its CLASSARGS. Every failure is a `CliUsageError` (exit code 2). */
export async function loadHandler(
  spec: { readonly name: string; readonly args: readonly string[] },
  options: LoadOptions,
): Promise<LoadedHandler> {
  const builtin = Object.hasOwn(BUILTIN_HANDLERS, spec.name)
    ? BUILTIN_HANDLERS[spec.name]
    : undefined;
  if (builtin) {
    if (builtin === Mailbox && spec.args.length === 1) {
      prepareMaildir(spec.args[0] as string, options.cwd);
    }
    try {
      return {
        handler: await builtin.fromCli(spec.args),
        label: spec.name.replace(/^aiosmtpd\.handlers\./, ""),
      };
    } catch (error) {
      throw new CliUsageError((error as Error).message);
    }
  }
  const { path, exportName } = splitExport(spec.name);
  const file = isAbsolute(path) ? path : resolve(options.cwd, path);
  if (!existsSync(file)) {
    if (!looksLikePath(path)) {
      throw new CliUsageError(
        `Unknown handler ${spec.name}: not a built-in (${LISTED_HANDLERS.join(", ")}) nor a module file`,
      );
    }
    throw new CliUsageError(`Handler module ${path} not found`);
  }
  const importModule =
    options.importModule ?? ((url: string) => import(url) as Promise<Record<string, unknown>>);
  let namespace: Record<string, unknown>;
  try {
    namespace = await importModule(pathToFileURL(file).href);
  } catch (error) {
    if (isTypeScript(file) && errorCode(error) === "ERR_UNKNOWN_FILE_EXTENSION") {
      throw new CliUsageError(
        `Handler module ${path} is TypeScript, which Node ${process.version} does not run: compile it to .js, or run under Node >= 22.6 with --experimental-strip-types`,
      );
    }
    const message = (error as Error).message?.split("\n")[0] ?? String(error);
    throw new CliUsageError(`Cannot import handler module ${path}: ${message}`);
  }
  const value = pickExport(namespace, exportName, path);
  try {
    return { handler: await instantiate(value, spec.args, path), label: spec.name };
  } catch (error) {
    if (error instanceof CliUsageError) throw error;
    throw new CliUsageError((error as Error).message ?? String(error));
  }
}

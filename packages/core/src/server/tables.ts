import { type CommandSpec, type ResolvedOptions, resolveOptions } from "../options.js";
import type { SaslContext, SaslMechanism } from "../sasl.js";
import { type CidrMatcher, parseCidrList } from "../syntax/cidr.js";
import type { Handler } from "./handler.js";
import {
  type AuthMechanism,
  BUILTIN_MECHANISMS,
  handlerMechanisms,
  runSasl,
} from "./mechanisms.js";
import type { CommandDefinition, SmtpOptions } from "./smtp-options.js";
import type { SmtpTransport } from "./transport.js";

/**
 * What every connection of one server shares, computed once per (class, handler, options): the
 * AUTH mechanisms, the added commands, the PROXY trust list, and the engine's options per kind
 * of connection. A session then costs no table building.
 */
export interface ServerTables {
  readonly mechanisms: ReadonlyMap<string, AuthMechanism>;
  readonly safeWithoutTls: ReadonlySet<string>;
  /** Mechanisms that decide per connection whether they can run (EXTERNAL, -PLUS). */
  readonly conditional: ReadonlyMap<string, SaslMechanism>;
  /** Added or replaced verbs: from `options.commands`, or `smtpVERB` methods of a subclass. */
  readonly commands: ReadonlyMap<string, { readonly definition: CommandDefinition | null }>;
  readonly specs: Readonly<Record<string, CommandSpec>>;
  readonly trust: CidrMatcher | null;
  /** The handler decides on each connection before the greeting (`handleCONNECT`). */
  readonly deferGreeting: boolean;
  /** Engine options per kind of connection (STARTTLS offered, implicit TLS, PROXY expected). */
  readonly resolved: Map<string, ResolvedOptions>;
}

const SHARED = new WeakMap<object, WeakMap<object, WeakMap<object, ServerTables>>>();

/**
 * The tables for a server object. `base` is the SMTP class's prototype: `smtpVERB` methods are
 * looked for on the prototypes between the server's own and it.
 */
export function serverTables(
  server: { readonly handler: Handler; readonly options: SmtpOptions },
  base: object,
): ServerTables {
  const proto = Object.getPrototypeOf(server) as object;
  const byHandler = SHARED.get(proto) ?? new WeakMap<object, WeakMap<object, ServerTables>>();
  SHARED.set(proto, byHandler);
  const byOptions = byHandler.get(server.handler) ?? new WeakMap<object, ServerTables>();
  byHandler.set(server.handler, byOptions);
  let tables = byOptions.get(server.options);
  if (!tables) {
    tables = buildTables(server, proto, base);
    byOptions.set(server.options, tables);
  }
  return tables;
}

/** The engine's options for this transport, resolved once per server and kind of connection. */
export function engineOptions(
  tables: ServerTables,
  o: SmtpOptions,
  hostname: string,
  transport: SmtpTransport,
): ResolvedOptions {
  const proxyEnabled = o.proxyProtocolTimeout !== undefined && o.proxyProtocolTimeout !== null;
  const peer = transport.peer;
  const peerTrusted = !tables.trust || (peer !== null && tables.trust.matches(peer.address));
  const startTls = transport.canStartTls && transport.tls === null;
  const implicitTls = transport.tls !== null;
  const proxyProtocol = proxyEnabled && peerTrusted;
  const refused = refusedAsUntrusted(tables, o, transport);
  const key = `${Number(startTls)}${Number(implicitTls)}${Number(proxyProtocol)}${Number(refused)}`;
  let resolved = tables.resolved.get(key);
  if (resolved) return resolved;
  const extensions = { ...(o.extensions ?? {}) };
  if (o.decodeData) Object.assign(extensions, { eightBitMime: false });
  if (o.enableSmtpUtf8 !== undefined) Object.assign(extensions, { smtpUtf8: o.enableSmtpUtf8 });
  resolved = resolveOptions({
    hostname,
    ...(o.ident === undefined ? {} : { ident: o.ident }),
    lmtp: o.lmtp ?? false,
    ...(o.dataSizeLimit === undefined ? {} : { dataSizeLimit: o.dataSizeLimit }),
    ...(o.commandSizeLimit === undefined ? {} : { commandSizeLimit: o.commandSizeLimit }),
    ...(o.lineLengthLimit === undefined ? {} : { lineLengthLimit: o.lineLengthLimit }),
    ...(o.lineEndings === undefined ? {} : { lineEndings: o.lineEndings }),
    ...(o.localPartLimit === undefined ? {} : { localPartLimit: o.localPartLimit }),
    ...(o.maxRecipients === undefined ? {} : { maxRecipients: o.maxRecipients }),
    commandCallLimit: o.commandCallLimit ?? null,
    extensions,
    startTls,
    requireStartTls: o.requireStartTls ?? false,
    implicitTls,
    auth: {
      mechanisms: [...tables.mechanisms.keys()],
      requireTls: o.authRequireTls ?? true,
      clearTextMechanisms: [...tables.safeWithoutTls],
      required: o.authRequired ?? false,
    },
    proxyProtocol,
    // The refusal of an untrusted peer is a greeting decision, taken where handleCONNECT's is.
    deferGreeting: tables.deferGreeting || refused,
    commands: tables.specs,
  });
  tables.resolved.set(key, resolved);
  return resolved;
}

/** True when this peer is outside `proxyTrust` and `proxyUntrusted: "refuse"` turns it away. */
export function refusedAsUntrusted(
  tables: ServerTables,
  o: SmtpOptions,
  transport: SmtpTransport,
): boolean {
  if (o.proxyUntrusted !== "refuse" || !tables.trust) return false;
  if (o.proxyProtocolTimeout === undefined || o.proxyProtocolTimeout === null) return false;
  const peer = transport.peer;
  return peer === null || !tables.trust.matches(peer.address);
}

/** Checks the options that the engine does not see. */
export function checkServerOptions(options: SmtpOptions): void {
  const positive = (name: string, value: number | null | undefined): void => {
    if (value !== undefined && value !== null && !(value > 0))
      throw new RangeError(`${name} must be > 0`);
  };
  positive("proxyProtocolTimeout", options.proxyProtocolTimeout);
  positive("timeout", options.timeout);
  positive("dataTimeout", options.dataTimeout);
  if (options.minDataRate !== undefined && !(options.minDataRate >= 0))
    throw new RangeError("minDataRate must be >= 0");
}

function buildTables(
  server: { readonly handler: Handler; readonly options: SmtpOptions },
  proto: object,
  base: object,
): ServerTables {
  const { handler, options } = server;
  checkServerOptions(options);
  const mechanisms = new Map<string, AuthMechanism>();
  const safeWithoutTls = new Set<string>();
  const conditional = new Map<string, SaslMechanism>();
  for (const mechanism of [...BUILTIN_MECHANISMS, ...(options.mechanisms ?? [])]) {
    const name = mechanism.name.toUpperCase();
    mechanisms.set(name, runSasl(mechanism));
    if (mechanism.available) conditional.set(name, mechanism);
    else conditional.delete(name);
    if (mechanism.safeWithoutTls) safeWithoutTls.add(name);
  }
  // aiosmtpd: the handler's auth_NAME methods win over built-ins of the same name.
  for (const [name, mechanism] of handlerMechanisms(handler)) {
    mechanisms.set(name, mechanism);
    conditional.delete(name);
    safeWithoutTls.delete(name);
  }
  for (const name of options.authExcludeMechanism ?? []) mechanisms.delete(name.toUpperCase());

  const commands = new Map<string, { readonly definition: CommandDefinition | null }>();
  const specs: Record<string, CommandSpec> = {};
  const addSpec = (
    verb: string,
    source: { syntax?: string; extendedSyntax?: string } | undefined,
  ) => {
    specs[verb] = {
      ...(source?.syntax === undefined ? {} : { syntax: source.syntax }),
      ...(source?.extendedSyntax === undefined ? {} : { extendedSyntax: source.extendedSyntax }),
    };
  };
  for (const [verb, definition] of Object.entries(options.commands ?? {})) {
    commands.set(verb.toUpperCase(), { definition });
    addSpec(verb.toUpperCase(), definition);
  }
  // Methods named smtpVERB on a subclass add (or, when they override a built-in, replace) VERB.
  for (
    let p: object | null = proto;
    p && p !== base && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const key of Object.getOwnPropertyNames(p)) {
      const verb = /^smtp([A-Z][A-Z0-9_-]*)$/.exec(key)?.[1];
      const method = (server as unknown as Record<string, unknown>)[key];
      if (verb && typeof method === "function" && !commands.has(verb)) {
        commands.set(verb, { definition: null });
        addSpec(verb, method as { syntax?: string; extendedSyntax?: string });
      }
    }
  }
  const trust =
    options.proxyTrust && options.proxyTrust.length > 0 ? parseCidrList(options.proxyTrust) : null;
  const deferGreeting = typeof handler.handleCONNECT === "function";
  return {
    mechanisms,
    safeWithoutTls,
    conditional,
    commands,
    specs,
    trust,
    deferGreeting,
    resolved: new Map(),
  };
}

/** The mechanisms that can run on this connection now; `null` when none depends on it. */
export function availableMechanisms(tables: ServerTables, context: SaslContext): string[] | null {
  const { conditional, mechanisms } = tables;
  if (conditional.size === 0) return null;
  return [...mechanisms.keys()].filter(
    (name) => conditional.get(name)?.available?.(context) ?? true,
  );
}

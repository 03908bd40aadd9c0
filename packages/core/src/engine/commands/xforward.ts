/**
 * XFORWARD (Postfix's XFORWARD_README): a trusted relay passes on the up-stream client of the
 * next transaction, for logging and trace headers. COMMAND_RULES as XCLIENT's; accepted, 250.
 */
import type { XforwardEvent } from "../../events.js";
import {
  isAttributeError,
  isHostname,
  isUnavailable,
  neuter,
  parseAttributeList,
  parsePort,
  parseRelayAddress,
} from "../../syntax/relay-attributes.js";
import { PENDING } from "../dialog.js";
import { TEMPLATES } from "../replies.js";
import { type Command, refuse } from "./command.js";
import { attributeRecord, attributeRefusal, relayEnabled } from "./relay.js";

type Fields = { -readonly [K in keyof XforwardEvent]: XforwardEvent[K] };

/** PROTO may name any protocol, up to this length (Postfix's limit). */
const MAX_PROTO = 64;

export const xforward: Command<XforwardEvent> = {
  available: (d) => relayEnabled(d, "XFORWARD"),
  parse(_d, verb, argument) {
    const list = parseAttributeList(argument as string);
    if (isAttributeError(list)) return refuse(attributeRefusal("XFORWARD", list));
    const event: Fields = {
      type: "xforward",
      attributes: attributeRecord(list),
      address: undefined,
      port: undefined,
      name: undefined,
      helo: undefined,
      proto: undefined,
      ident: undefined,
      source: undefined,
    };
    for (const { name, value } of list) {
      const bad = refuse(TEMPLATES.badAttributeValue(name, value));
      const unavailable = isUnavailable(value);
      switch (name) {
        case "NAME":
          if (unavailable) event.name = null;
          else if (isHostname(neuter(value))) event.name = value;
          else return bad;
          break;
        case "ADDR":
          event.address = unavailable ? null : parseRelayAddress(neuter(value));
          if (event.address === null && !unavailable) return bad;
          break;
        case "PORT":
          event.port = unavailable ? null : parsePort(value);
          if (event.port === null && !unavailable) return bad;
          break;
        case "HELO":
          event.helo = unavailable ? null : neuter(value);
          break;
        case "PROTO":
          if (value.length > MAX_PROTO) return bad;
          event.proto = unavailable ? null : neuter(value);
          break;
        case "IDENT":
          event.ident = unavailable ? null : neuter(value);
          break;
        case "SOURCE": {
          const source = value.toUpperCase();
          if (unavailable) event.source = null;
          else if (source === "LOCAL" || source === "REMOTE") event.source = source;
          else return bad;
          break;
        }
        default:
          return refuse(TEMPLATES.badAttributeName(verb, name));
      }
    }
    return event;
  },
  run(d, _verb, _argument, event) {
    d.await(PENDING.xforward, event);
  },
};

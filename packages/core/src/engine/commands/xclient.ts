/**
 * XCLIENT (Postfix's XCLIENT_README): a trusted proxy or filter names the client it speaks for.
 * COMMAND_RULES: no MAIL transaction (503), attributes given (501), the client trusted (550),
 * then the attributes (`parse`, 501 for the first bad one). Accepted, it restarts the session.
 */
import type { XclientEvent } from "../../events.js";
import {
  isAttributeError,
  isHostname,
  isTemporarilyUnavailable,
  isUnavailable,
  neuter,
  parseAttributeList,
  parsePort,
  parseRelayAddress,
} from "../../syntax/relay-attributes.js";
import { TEMPLATES } from "../replies.js";
import { type Command, refuse } from "./command.js";
import { attributeRecord, attributeRefusal, relayEnabled } from "./relay.js";

type Fields = { -readonly [K in keyof XclientEvent]: XclientEvent[K] };

export const xclient: Command<XclientEvent> = {
  available: (d) => relayEnabled(d, "XCLIENT"),
  parse(_d, verb, argument) {
    const list = parseAttributeList(argument as string);
    if (isAttributeError(list)) return refuse(attributeRefusal("XCLIENT", list));
    const event: Fields = {
      type: "xclient",
      attributes: attributeRecord(list),
      address: undefined,
      port: undefined,
      name: undefined,
      helo: undefined,
      proto: undefined,
      login: undefined,
      destAddress: undefined,
      destPort: undefined,
    };
    for (const { name, value } of list) {
      const bad = refuse(TEMPLATES.badAttributeValue(name, value));
      const unavailable = isUnavailable(value);
      switch (name) {
        case "NAME":
          if (unavailable || isTemporarilyUnavailable(value)) event.name = null;
          else if (isHostname(value)) event.name = value;
          else return bad;
          break;
        case "ADDR":
        case "DESTADDR": {
          const address = unavailable ? null : parseRelayAddress(neuter(value));
          if (address === null && !unavailable) return bad;
          if (name === "ADDR") event.address = address;
          else event.destAddress = address;
          break;
        }
        case "PORT":
        case "DESTPORT": {
          const port = unavailable ? null : parsePort(value);
          if (port === null && !unavailable) return bad;
          if (name === "PORT") event.port = port;
          else event.destPort = port;
          break;
        }
        case "HELO":
          if (unavailable) event.helo = null;
          else if (value.length <= 255) event.helo = neuter(value);
          else return bad;
          break;
        case "PROTO": {
          const proto = value.toUpperCase();
          if (proto !== "SMTP" && proto !== "ESMTP") return bad;
          event.proto = proto;
          break;
        }
        case "LOGIN":
          event.login = unavailable ? null : value;
          break;
        default:
          return refuse(TEMPLATES.badAttributeName(verb, name));
      }
    }
    return event;
  },
  run(d, _verb, _argument, event) {
    d.await({ kind: "xclient", login: typeof event.login === "string" }, event);
  },
};

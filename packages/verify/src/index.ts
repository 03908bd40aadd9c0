export {
  type DnsResolver,
  type DnsResolverOptions,
  dnsResolver,
  isTemporaryDnsError,
  serverList,
} from "./resolver.js";
export {
  lookUpReverseName,
  type ReverseDnsOptions,
  type ReverseName,
  reverseDns,
  reverseQueryName,
} from "./reverse-dns.js";
export { DEFAULT_SPOOL_THRESHOLD, Spool } from "./spool.js";
export {
  ALL_CHECKS,
  type Authentication,
  authenticationOf,
  type Check,
  Verifier,
  type VerifyOptions,
  type VerifyPolicy,
  verifier,
} from "./verifier.js";

export {
  type AuthServerOptions,
  type AuthSetup,
  authOptions,
  KNOWN_MECHANISMS,
  parseMechanismList,
} from "./auth-options.js";
export { timingSafeEqual } from "./bytes.js";
export {
  CHANNEL_BINDING_TYPES,
  type ChannelBindingType,
  canBind,
  channelBindingData,
  endPointHash,
} from "./channel-binding.js";
export type { DigestName, ScramHash } from "./crypto.js";
export {
  type AuthenticatorWrapper,
  type FailedAttemptsOptions,
  failedAttempts,
  TOO_MANY_FAILURES,
} from "./failed-attempts.js";
export { hmacMd5, md5 } from "./md5.js";
export { CramMd5Credentials, type CramMd5Options, cramMd5 } from "./mechanisms/cram-md5.js";
export {
  certificateCommonName,
  ExternalCredentials,
  type ExternalOptions,
  external,
} from "./mechanisms/external.js";
export { OAuthCredentials, type TokenVerifier } from "./mechanisms/oauth.js";
export {
  type OAuthBearerOptions,
  oauthBearer,
  parseOAuthBearer,
} from "./mechanisms/oauthbearer.js";
export {
  decodeSaslName,
  encodeSaslName,
  type ScramError,
  type ScramLookup,
  type ScramOptions,
  scram,
  scramMechanisms,
  scramSha1,
  scramSha1Plus,
  scramSha256,
  scramSha256Plus,
} from "./mechanisms/scram.js";
export { parseXOAuth2, type XOAuth2Options, xoauth2 } from "./mechanisms/xoauth2.js";
export { saslPrep } from "./saslprep.js";
export {
  DEFAULT_SCRAM_ITERATIONS,
  formatScramKey,
  type ScramKeyOptions,
  ScramKeys,
  type ScramStoredKey,
  scramStoredKey,
} from "./scram-keys.js";
export { type SimulateOptions, type SimulateOutcome, simulateSasl } from "./simulate.js";
export {
  AuthIdentity,
  type ContextualMechanism,
  type VerdictAwareExchange,
} from "./types.js";
export {
  type AuthenticatorOptions,
  parseUsersFile,
  UserDatabase,
  UsersFileError,
  type UsersFileLineOptions,
  type UsersFileOptions,
  usersFileLine,
} from "./users-file.js";

export { type AuthFailureLimitOptions, authFailureLimits } from "./auth-limits.js";
export { type ConnectionLimitOptions, connectionLimits } from "./connection-limits.js";
export { type LimitsOptions, limits } from "./limits.js";
export { MemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export {
  type MessageLimitOptions,
  messageLimits,
  type TransactionLimitOptions,
} from "./message-limits.js";
export { canonicalAddress, networkOf } from "./network-key.js";
export { parseRate } from "./parse-rate.js";
export { RedisStore, type RedisStoreOptions } from "./redis-store.js";
export type { LimitEvent, LimitName, PolicyContext, Rate } from "./report.js";
export type { Acquired, Lease, LimitStore, Slot, WindowCount } from "./store.js";

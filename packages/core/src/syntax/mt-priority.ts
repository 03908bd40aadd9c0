/**
 * RFC 6710 §3: `MT-PRIORITY=` priority-value, `["-" / "+"] DIGIT`, from -9 (lowest) to 9
 * (highest); 0 is the priority of a message without the parameter. Returns null for anything else.
 */
const PRIORITY = /^[+-]?\d$/;

export function parseMtPriority(value: string | null): number | null {
  if (value === null || !PRIORITY.test(value)) return null;
  // Number("-0") is -0; a priority of "-0" is plain 0.
  return Number(value) || 0;
}

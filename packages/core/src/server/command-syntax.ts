/** Marks a method as a command's `HELP` text, aiosmtpd's `@syntax` (works as a decorator or a call). */
export function syntax(text: string, extended?: string) {
  return (target: unknown, _context?: unknown, descriptor?: { value?: unknown }): void => {
    // Standard decorators pass (method, context); legacy ones (prototype, key, descriptor).
    const method = descriptor?.value ?? (typeof target === "function" ? target : undefined);
    if (typeof method === "function")
      Object.assign(method, { syntax: text, extendedSyntax: extended });
  };
}

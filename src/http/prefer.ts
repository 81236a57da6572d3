/**
 * The `Prefer` request header (RFC 7240) as hosted job APIs use it:
 * `Prefer: wait=N` blocks up to N seconds; `Prefer: respond-async` answers at once.
 */
export interface Preference {
  /** Seconds to wait; undefined when the header says nothing about waiting. */
  wait?: number;
  respondAsync: boolean;
}

export function parsePrefer(header: string | undefined, maxWaitS: number): Preference {
  const result: Preference = { respondAsync: false };
  if (!header) return result;
  for (const part of header.split(',')) {
    const [rawName, rawValue] = part.split(';')[0]!.split('=');
    const name = rawName?.trim().toLowerCase();
    const value = rawValue?.trim().replace(/^"|"$/g, '');
    if (name === 'respond-async') result.respondAsync = true;
    if (name === 'wait' && value !== undefined && /^\d+(\.\d+)?$/.test(value)) {
      result.wait = Math.min(Number(value), maxWaitS);
    }
  }
  return result;
}

import { pino, type Logger } from 'pino';

/** The structured logger: JSON lines on stdout, one child per component. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...base } });
}

export type { Logger };

import { readFileSync } from 'node:fs';

/** The package version, read when a main file asks for it (not at import time). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

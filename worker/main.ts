/**
 * `npm run worker`: one daemon process (one per GPU). Needs DATABASE_URL,
 * or shares the embedded Postgres of an API started from the same DATA_DIR.
 */
import { createLogger } from '../lib/logger.ts';
import { configOrExit, onShutdown } from '../lib/process.ts';
import { openCore } from '../lib/runtime.ts';
import { packageVersion } from '../lib/version.ts';
import { createDaemon } from './daemon.ts';
import { loadEngines } from './engines/registry.ts';

const config = configOrExit();
const log = createLogger(config.LOG_LEVEL, { service: 'worker' });
const engines = await loadEngines(config, log.child({ component: 'engines' }));
const core = await openCore(config, log);
const daemon = createDaemon(core, config, { engines, log, version: packageVersion() });
await daemon.start();
onShutdown(log, async () => {
  await daemon.stop();
  for (const engine of engines) await engine.close?.().catch(() => {});
  await core.close();
});

/**
 * `npm start`: the HTTP API, plus one embedded daemon when WORKER=embedded
 * (the default without DATABASE_URL, together with an embedded Postgres).
 */
import { createLogger } from '../lib/logger.ts';
import { configOrExit, onShutdown } from '../lib/process.ts';
import { packageVersion } from '../lib/version.ts';
import { loadEngines } from '../worker/engines/registry.ts';
import { startService } from './service.ts';

const config = configOrExit();
const log = createLogger(config.LOG_LEVEL, { service: 'api' });
const engines = config.WORKER === 'embedded' ? await loadEngines(config, log.child({ component: 'engines' })) : [];
const service = await startService({ config, log, version: packageVersion(), engines });
onShutdown(log, () => service.stop());

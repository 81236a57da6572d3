/**
 * A real daemon process for recovery tests, driven by the test engine.
 * Environment: the service's variables plus TEST_ENGINE_STEPS / TEST_ENGINE_STEP_MS / TEST_ENGINE_QUIET_AFTER.
 * Prints "daemon-ready <id>" once it pulls jobs.
 */
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { onShutdown } from '../../lib/process.ts';
import { openCore } from '../../lib/runtime.ts';
import { createDaemon } from '../../worker/daemon.ts';
import { createTestEngine } from './test-engine.ts';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL);
const core = await openCore(config, log);
const engine = createTestEngine({
  steps: Number(process.env.TEST_ENGINE_STEPS ?? 3),
  stepMs: Number(process.env.TEST_ENGINE_STEP_MS ?? 10),
  ...(process.env.TEST_ENGINE_QUIET_AFTER ? { quietAfter: Number(process.env.TEST_ENGINE_QUIET_AFTER) } : {}),
});
const daemon = createDaemon(core, config, { engines: [engine], log, version: 'test', heartbeatMs: 1_000 });
await daemon.start();
process.stdout.write(`daemon-ready ${daemon.id}\n`);
onShutdown(log, async () => {
  await daemon.stop();
  await core.close();
});

/**
 * Loads the engines a daemon offers. Each factory returns an engine even
 * when its models or credentials are missing (status() then says why), so
 * a daemon always starts and /health shows what is and is not ready.
 * `ENGINES=landmark,replicate` limits which are loaded at all.
 */
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { createSessionFactory } from '../onnx/index.ts';
import { createPromptWriter } from '../prompts/prompt-writer.ts';
import type { Engine } from '../engine.ts';
import { createDiffusionEngine } from './diffusion/index.ts';
import { createLandmarkEngine } from './landmark/index.ts';
import { createReplicateCartoonifyEngine, createReplicateFaceSwapEngine } from './replicate/index.ts';

export const ENGINE_NAMES = ['landmark', 'diffusion', 'replicate'] as const;

export async function loadEngines(config: Config, log: Logger): Promise<Engine[]> {
  const wanted = (name: string) => config.ENGINES.length === 0 || config.ENGINES.includes(name);
  const unknown = config.ENGINES.filter((n) => !(ENGINE_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0) throw new Error(`ENGINES: unknown engine(s) ${unknown.join(', ')}; known: ${ENGINE_NAMES.join(', ')}`);

  const sessions = createSessionFactory({ provider: config.ONNX_PROVIDER, threads: config.ONNX_THREADS, log });
  const engines: Engine[] = [];
  if (wanted('landmark')) engines.push(await createLandmarkEngine({ config, log, sessions }));
  if (wanted('diffusion')) engines.push(await createDiffusionEngine({ config, log, sessions, promptWriter: createPromptWriter({ config, log }) }));
  if (wanted('replicate')) {
    engines.push(await createReplicateCartoonifyEngine({ config, log }));
    engines.push(await createReplicateFaceSwapEngine({ config, log }));
  }
  for (const engine of engines) {
    const status = engine.status();
    log.info({ engine: engine.name, task: engine.task, device: engine.device, ready: status.ready, detail: status.detail }, 'engine loaded');
  }
  return engines;
}

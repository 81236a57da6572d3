/**
 * The Replicate cartoonify engine: sends `inputs.image` to
 * REPLICATE_CARTOONIFY_MODEL (field REPLICATE_CARTOONIFY_INPUT_FIELD, plus
 * REPLICATE_CARTOONIFY_EXTRA_INPUT) and returns the cartoon as encoded bytes.
 */
import type { Logger } from 'pino';
import type { Config } from '../../../lib/config.ts';
import { JobError } from '../../../lib/errors.ts';
import type { Engine, EngineContext, EngineInputs, EngineOutput, EngineStatus } from '../../engine.ts';
import { createReplicateRunner, requestedOutput, type ReplicateTuning } from './run-model.ts';

export interface ReplicateEngineDeps {
  config: Config;
  log: Logger;
  /** The fetch the Replicate client and the output download use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Polling, sync-wait, retry and size knobs; the defaults suit production. */
  tuning?: Partial<ReplicateTuning>;
}

export async function createReplicateCartoonifyEngine(deps: ReplicateEngineDeps): Promise<Engine> {
  const { config } = deps;
  const log = deps.log.child({ engine: 'replicate', task: 'cartoonify' });
  const runner = createReplicateRunner({ ...deps, log }, config.REPLICATE_CARTOONIFY_MODEL);
  const status: EngineStatus = config.REPLICATE_API_TOKEN
    ? { ready: true, detail: `Replicate model ${config.REPLICATE_CARTOONIFY_MODEL}` }
    : { ready: false, detail: 'REPLICATE_API_TOKEN is not set' };

  return {
    name: 'replicate',
    task: 'cartoonify',
    device: 'remote',
    status: () => status,
    async run(inputs: EngineInputs, params: Record<string, unknown>, ctx: EngineContext): Promise<EngineOutput> {
      if (!status.ready) throw new JobError('engine_unavailable', status.detail ?? 'not ready');
      const image = inputs.image;
      if (!image) throw new JobError('invalid_input', 'Cartoonify needs an input image (role "image")');
      return runner.run(
        {
          images: { [config.REPLICATE_CARTOONIFY_INPUT_FIELD]: image },
          extraInput: config.REPLICATE_CARTOONIFY_EXTRA_INPUT,
          output: requestedOutput(params),
        },
        ctx,
      );
    },
    close: () => runner.close(),
  };
}

/**
 * The optional Replicate face-swap engine, for deployments without a GPU:
 * sends `inputs.base` and `inputs.face` to REPLICATE_FACESWAP_MODEL (fields
 * REPLICATE_FACESWAP_BASE_FIELD and REPLICATE_FACESWAP_FACE_FIELD, plus
 * REPLICATE_FACESWAP_EXTRA_INPUT). Face choice, mask and diffusion options do
 * not apply: the hosted model decides.
 */
import type { Config } from '../../../lib/config.ts';
import { JobError } from '../../../lib/errors.ts';
import type { Engine, EngineContext, EngineInputs, EngineOutput, EngineStatus } from '../../engine.ts';
import type { ReplicateEngineDeps } from './cartoonify.ts';
import { createReplicateRunner, requestedOutput } from './run-model.ts';

function statusOf(config: Config): EngineStatus {
  const missing = [
    config.REPLICATE_API_TOKEN ? undefined : 'REPLICATE_API_TOKEN',
    config.REPLICATE_FACESWAP_MODEL ? undefined : 'REPLICATE_FACESWAP_MODEL',
  ].filter((name) => name !== undefined);
  if (missing.length > 0) return { ready: false, detail: `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set` };
  return { ready: true, detail: `Replicate model ${config.REPLICATE_FACESWAP_MODEL}` };
}

export async function createReplicateFaceSwapEngine(deps: ReplicateEngineDeps): Promise<Engine> {
  const { config } = deps;
  const log = deps.log.child({ engine: 'replicate', task: 'face_swap' });
  const status = statusOf(config);
  const runner = config.REPLICATE_FACESWAP_MODEL ? createReplicateRunner({ ...deps, log }, config.REPLICATE_FACESWAP_MODEL) : undefined;

  return {
    name: 'replicate',
    task: 'face_swap',
    device: 'remote',
    status: () => status,
    async run(inputs: EngineInputs, params: Record<string, unknown>, ctx: EngineContext): Promise<EngineOutput> {
      if (!status.ready || !runner) throw new JobError('engine_unavailable', status.detail ?? 'not ready');
      const { base, face } = inputs;
      if (!base || !face) throw new JobError('invalid_input', 'Face swap needs a base image and a face image');
      return runner.run(
        {
          images: { [config.REPLICATE_FACESWAP_BASE_FIELD]: base, [config.REPLICATE_FACESWAP_FACE_FIELD]: face },
          extraInput: config.REPLICATE_FACESWAP_EXTRA_INPUT,
          output: requestedOutput(params),
        },
        ctx,
      );
    },
    close: async () => {
      await runner?.close();
    },
  };
}

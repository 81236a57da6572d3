/**
 * What each job kind does, in terms of engines:
 * - face_swap: the job's swap engine on (base, face);
 * - cartoonify: the cartoonify engine on (image);
 * - face_swap_cartoon: cartoonify the face image, then swap that cartoon face
 *   into the base image; two stages, each half of the progress bar.
 */
import { JobError, throwIfAborted } from '../lib/errors.ts';
import type { JobRow } from '../lib/db/schema.ts';
import type { InputImage } from '../lib/images/raw.ts';
import { PARAMS_SCHEMAS } from '../lib/jobs/params.ts';
import type { Engine, EngineContext, EngineOutput } from './engine.ts';
import type { InputResolver } from './inputs.ts';
import { encodeOutput } from './output.ts';

export interface EngineSet {
  /** Ready face-swap engines by name. */
  swap: Map<string, Engine>;
  /** Ready cartoonify engines by name. */
  cartoonify: Map<string, Engine>;
}

export interface JobRunnerDeps {
  engines: EngineSet;
  resolveInput: InputResolver;
  decode(bytes: Buffer): Promise<InputImage>;
}

function pick(map: Map<string, Engine>, name: string, task: string): Engine {
  const engine = map.get(name);
  if (!engine) throw new JobError('engine_unavailable', `this daemon has no ready ${task} engine "${name}"`, { retryable: true });
  return engine;
}

/** A context whose progress covers [from, to] of the whole job, with a stage prefix. */
function slice(ctx: EngineContext, from: number, to: number, prefix: string): EngineContext {
  return { ...ctx, progress: (f, stage) => ctx.progress(from + (to - from) * f, `${prefix}${stage}`) };
}

async function resolveAll(row: JobRow, deps: JobRunnerDeps, ctx: EngineContext): Promise<Record<string, InputImage>> {
  ctx.progress(0, 'fetching inputs');
  const entries = await Promise.all(
    Object.entries(row.input).map(async ([role, ref]) => [role, await deps.resolveInput(ref, ctx.signal)] as const),
  );
  throwIfAborted(ctx.signal);
  return Object.fromEntries(entries);
}

export async function runJob(row: JobRow, deps: JobRunnerDeps, ctx: EngineContext): Promise<EngineOutput> {
  // Parameters were validated by the API; parsing again fills defaults added since and guards old rows.
  const params = PARAMS_SCHEMAS[row.kind].parse(row.params) as Record<string, unknown>;
  switch (row.kind) {
    case 'face_swap': {
      const engine = pick(deps.engines.swap, row.engine, 'face-swap');
      const inputs = await resolveAll(row, deps, ctx);
      return engine.run(inputs, params, ctx);
    }
    case 'cartoonify': {
      const engine = pick(deps.engines.cartoonify, row.engine, 'cartoonify');
      const inputs = await resolveAll(row, deps, ctx);
      return engine.run(inputs, params, ctx);
    }
    case 'face_swap_cartoon': {
      const [cartoonName] = [...deps.engines.cartoonify.keys()];
      if (!cartoonName) throw new JobError('engine_unavailable', 'this daemon has no ready cartoonify engine', { retryable: true });
      const cartoonEngine = pick(deps.engines.cartoonify, cartoonName, 'cartoonify');
      const swapEngine = pick(deps.engines.swap, row.engine, 'face-swap');
      const inputs = await resolveAll(row, deps, ctx);
      const cartoon = await cartoonEngine.run({ image: inputs.face! }, params, slice(ctx, 0, 0.5, 'cartoonify: '));
      const first = cartoon.images[0];
      if (!first) throw new JobError('provider_bad_response', 'the cartoonify engine returned no image');
      const cartoonFace = await deps.decode((await encodeOutput(first, { output_format: 'png', output_quality: 100 })).bytes);
      throwIfAborted(ctx.signal);
      const swapped = await swapEngine.run({ base: inputs.base!, face: cartoonFace }, params, slice(ctx, 0.5, 1, 'swap: '));
      return { images: swapped.images, info: { ...swapped.info, cartoonify: cartoon.info ?? {} } };
    }
  }
}

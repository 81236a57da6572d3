/**
 * A test engine for driving the queue and daemon: it does not touch faces.
 * It reports `steps` progress steps `stepMs` apart, honours the abort
 * signal, and returns the base image with its colours inverted, or fails
 * the way a scenario asks.
 */
import { JobError, throwIfAborted } from '../../lib/errors.ts';
import type { Engine, EngineTask } from '../../worker/engine.ts';

export interface TestEngineOptions {
  name?: string;
  task?: EngineTask;
  steps?: number;
  stepMs?: number;
  /** Report no progress after this many steps (the run goes on silently). */
  quietAfter?: number;
  /** Called at the start of each run with the attempt's inputs; throw to fail the run. */
  onRun?: (run: number) => void | Promise<void>;
}

export function createTestEngine(options: TestEngineOptions = {}): Engine & { runs: number } {
  const steps = options.steps ?? 3;
  const stepMs = options.stepMs ?? 5;
  const engine = {
    name: options.name ?? 'landmark',
    task: options.task ?? ('face_swap' as EngineTask),
    device: 'cpu',
    runs: 0,
    status: () => ({ ready: true, detail: 'test engine' }),
    async run(inputs: Parameters<Engine['run']>[0], _params: unknown, ctx: Parameters<Engine['run']>[2]) {
      engine.runs += 1;
      await options.onRun?.(engine.runs);
      const source = inputs.base ?? inputs.image;
      if (!source) throw new JobError('invalid_request', 'no input image');
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, stepMs));
        throwIfAborted(ctx.signal);
        if (options.quietAfter === undefined || i <= options.quietAfter) ctx.progress(i / steps, `step ${i}/${steps}`);
      }
      const data = Uint8Array.from(source.raw.data, (v) => 255 - v);
      return { images: [{ kind: 'raw' as const, image: { ...source.raw, data } }], info: { test_engine: true } };
    },
  };
  return engine;
}

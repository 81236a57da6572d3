/**
 * The slice of an onnxruntime session the diffusion stages use, and a wrapper
 * that accounts the time spent inside model calls, so the engine's own
 * overhead (everything outside `run`) can be measured apart from model time.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';

export type OrtSession = Pick<InferenceSession, 'run' | 'inputNames' | 'outputNames'>;

type Metadata = Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>;

export interface ModelClock {
  /** Milliseconds spent inside model calls since the last reset. */
  modelMs: number;
  calls: number;
  reset(): void;
}

export function createModelClock(): ModelClock {
  return {
    modelMs: 0,
    calls: 0,
    reset() {
      this.modelMs = 0;
      this.calls = 0;
    },
  };
}

/** A session whose `run` adds its wall time to `clock`. */
export function timedSession<S extends OrtSession>(session: S, clock: ModelClock): S {
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: (session as Partial<Metadata>).inputMetadata,
    outputMetadata: (session as Partial<Metadata>).outputMetadata,
    async run(feeds: InferenceSession.FeedsType, ...rest: unknown[]): Promise<InferenceSession.ReturnType> {
      const t0 = performance.now();
      try {
        return await (session.run as (f: InferenceSession.FeedsType, ...r: unknown[]) => Promise<InferenceSession.ReturnType>)(feeds, ...rest);
      } finally {
        clock.modelMs += performance.now() - t0;
        clock.calls++;
      }
    },
  } as unknown as S;
}

/** Float32 data of a named output (or the first output when `name` is undefined). */
export function outputData(out: InferenceSession.ReturnType, session: OrtSession, name?: string): Float32Array {
  const key = name ?? session.outputNames[0]!;
  const t: Tensor | undefined = out[key];
  if (!t) throw new Error(`model output "${key}" missing (has ${Object.keys(out).join(', ')})`);
  return t.data as Float32Array;
}

/** Release native output buffers once their data has been copied out. */
export function disposeAll(out: InferenceSession.ReturnType): void {
  for (const t of Object.values(out)) t.dispose?.();
}

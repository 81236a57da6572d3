/**
 * The engine interface: the one seam between the daemon's queue code and the
 * things that make images (the landmark and diffusion face-swap engines, the
 * Replicate cartoonify engine, test engines).
 *
 * An engine gets decoded, validated input images and validated parameters; it
 * reports progress, honours the abort signal between expensive steps, and
 * returns images. It never touches the database, the queue or storage.
 */
import type { Logger } from 'pino';
import type { InputImage, RawImage } from '../lib/images/raw.ts';

/** What an engine does. A face-swap job uses a `face_swap` engine; a cartoonify job a `cartoonify` one. */
export type EngineTask = 'face_swap' | 'cartoonify';

export interface EngineStatus {
  ready: boolean;
  /** Why not ready (missing model file, missing API token, ...), or extra detail when ready. */
  detail?: string;
}

export interface EngineContext {
  /** Fires on cancel and on daemon shutdown; check it between steps (throwIfAborted). */
  signal: AbortSignal;
  /**
   * Report progress: `fraction` in [0, 1] of this engine's own work and a short
   * stage name ("detect", "denoise 12/30", ...). Cheap to call often: the
   * daemon throttles what it writes to the database.
   */
  progress(fraction: number, stage: string): void;
  log: Logger;
}

/** An output image: raw pixels (the daemon encodes them in the requested format) or already-encoded bytes. */
export type EngineImage =
  | { kind: 'raw'; image: RawImage }
  | { kind: 'encoded'; bytes: Buffer; contentType: string };

export interface EngineOutput {
  images: EngineImage[];
  /** Facts worth keeping on the job record (seed used, faces found, prompt used, timings...). */
  info?: Record<string, unknown>;
}

/**
 * Inputs by role. Face swap: `base` (the photo whose face is replaced) and
 * `face` (the photo that gives the identity). Cartoonify: `image`.
 */
export type EngineInputs = Record<string, InputImage>;

export interface Engine<P = Record<string, unknown>> {
  /** Stable name, the value of the request's `engine` option ("landmark", "diffusion", "replicate"). */
  readonly name: string;
  readonly task: EngineTask;
  /** Where it runs: "cpu", "cuda", or "remote" for hosted APIs. */
  readonly device: string;
  status(): EngineStatus;
  run(inputs: EngineInputs, params: P, ctx: EngineContext): Promise<EngineOutput>;
  /** Release sessions and other resources. */
  close?(): Promise<void>;
}

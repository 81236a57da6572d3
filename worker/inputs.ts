/** Turns a job's input references (URL or upload key) into validated images. */
import { JobError } from '../lib/errors.ts';
import type { InputImage } from '../lib/images/raw.ts';
import type { ImageLoader } from '../lib/intake/index.ts';
import type { ImageRef } from '../lib/jobs/params.ts';
import type { Storage } from '../lib/storage/index.ts';

export function createInputResolver(loader: ImageLoader, storage: Storage) {
  return async function resolve(ref: ImageRef, signal?: AbortSignal): Promise<InputImage> {
    if ('url' in ref) return loader.load(ref.url, signal);
    const stored = await storage.get(ref.upload);
    if (!stored) throw new JobError('input_missing', `the uploaded input ${ref.upload} is no longer stored`);
    return loader.decode(stored.bytes);
  };
}

export type InputResolver = ReturnType<typeof createInputResolver>;

/**
 * How an input image travels to Replicate.
 *
 * Small images go inline as a data: URI: one request, nothing stored on
 * Replicate's side, nothing to clean up. Replicate recommends data URIs only
 * below about 1 MB (they inflate by a third and ride inside the JSON body), so
 * larger images are uploaded through its Files API and deleted when the
 * prediction is over.
 */
import type Replicate from 'replicate';
import type { InputImage } from '../../../lib/images/raw.ts';
import { JobError } from '../../../lib/errors.ts';

export const DEFAULT_DATA_URI_MAX_BYTES = 1024 * 1024;

const MIME = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' } as const;

export interface FileInput {
  /** The value for the model's input field. */
  value: string;
  /** Set when the image was uploaded: delete it afterwards. */
  fileId?: string;
}

export async function toFileInput(
  client: Replicate,
  image: InputImage,
  options: { dataUriMaxBytes: number; signal: AbortSignal; role: string },
): Promise<FileInput> {
  const mime = MIME[image.format];
  if (image.bytes.length <= options.dataUriMaxBytes) {
    return { value: `data:${mime};base64,${image.bytes.toString('base64')}` };
  }
  const blob = new Blob([new Uint8Array(image.bytes)], { type: mime });
  const file: unknown = await client.files.create(blob, { role: options.role }, { signal: options.signal });
  const id = (file as { id?: unknown })?.id;
  const url = (file as { urls?: { get?: unknown } })?.urls?.get;
  if (typeof id !== 'string' || typeof url !== 'string') {
    throw new JobError('provider_bad_response', 'Replicate answered the file upload without an id and a urls.get URL', {
      retryable: true,
    });
  }
  return { value: url, fileId: id };
}

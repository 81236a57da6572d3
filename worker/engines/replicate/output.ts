/**
 * Gets a prediction's output image into our hands: picks the file URL out of
 * the output, downloads it (Replicate deletes outputs after an hour, so we
 * never hand its URLs out), and checks that the bytes are an image we can
 * decode.
 */
import sharp from 'sharp';
import { JobError } from '../../../lib/errors.ts';

export const DEFAULT_OUTPUT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The first file URL in a prediction's output: a string, the first string of
 * an array (models that can return several images), or the first string
 * value of an object.
 */
export function pickOutputUrl(output: unknown): string {
  const candidates: unknown[] = Array.isArray(output)
    ? output
    : output !== null && typeof output === 'object'
      ? Object.values(output)
      : [output];
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && /^(https?:|data:)/.test(candidate)) return candidate;
  }
  const shown = JSON.stringify(output) ?? String(output);
  throw new JobError(
    'provider_bad_response',
    `The Replicate model succeeded but its output holds no file URL: ${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown}`,
  );
}

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

/** Image type from the first bytes; the Content-Type header of a download is not trusted. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (i: number): number => bytes[i] ?? -1;
  if (at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47) return 'png';
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return 'jpeg';
  if (at(0) === 0x52 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x46 && at(8) === 0x57 && at(9) === 0x45 && at(10) === 0x42 && at(11) === 0x50) {
    return 'webp';
  }
  if (at(0) === 0x47 && at(1) === 0x49 && at(2) === 0x46 && at(3) === 0x38) return 'gif';
  return undefined;
}

async function readCapped(response: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw new JobError('provider_bad_response', `The Replicate output is ${declared} bytes, over the ${maxBytes}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      throw new JobError('provider_bad_response', `The Replicate output is over the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function decodeDataUri(uri: string, maxBytes: number): Buffer {
  const match = /^data:[^,]*?(;base64)?,(.*)$/s.exec(uri);
  if (!match) throw new JobError('provider_bad_response', 'The Replicate output is a malformed data: URI');
  const bytes = match[1] ? Buffer.from(match[2] ?? '', 'base64') : Buffer.from(decodeURIComponent(match[2] ?? ''), 'latin1');
  if (bytes.length > maxBytes) {
    throw new JobError('provider_bad_response', `The Replicate output is over the ${maxBytes}-byte limit`);
  }
  return bytes;
}

export interface DownloadedImage {
  bytes: Buffer;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
}

/**
 * Downloads the output file (no Authorization header: output URLs are not
 * API endpoints, and the token must not travel to another host) and checks it.
 */
export async function downloadOutput(
  url: string,
  options: { fetch: typeof fetch; signal: AbortSignal; maxBytes: number; maxPixels: number },
): Promise<DownloadedImage> {
  let bytes: Buffer;
  if (url.startsWith('data:')) {
    bytes = decodeDataUri(url, options.maxBytes);
  } else {
    const response = await options.fetch(url, { signal: options.signal, redirect: 'follow' });
    if (!response.ok) {
      await response.body?.cancel();
      throw new JobError(
        'provider_bad_response',
        `Downloading the Replicate output failed with status ${response.status}`,
        { status: response.status, retryable: response.status === 408 },
      );
    }
    bytes = await readCapped(response, options.maxBytes);
  }
  const format = sniffImageFormat(bytes);
  if (!format) {
    throw new JobError('provider_bad_response', `The Replicate output is not an image (${bytes.length} bytes of something else)`);
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    const meta = await sharp(bytes, { limitInputPixels: options.maxPixels }).metadata();
    width = meta.width;
    height = meta.height;
    // metadata() reads headers only; decoding the pixels catches truncated files.
    await sharp(bytes, { limitInputPixels: options.maxPixels }).raw().toBuffer();
  } catch (error) {
    throw new JobError('provider_bad_response', `The Replicate output image cannot be decoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!width || !height) throw new JobError('provider_bad_response', 'The Replicate output image has no size');
  return { bytes, format, contentType: `image/${format}`, width, height };
}

const FORMAT_CONTENT_TYPE = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

/**
 * The image in the job's requested output format: the bytes as they came when
 * the format already matches (no second lossy encode), else re-encoded.
 */
export async function inRequestedFormat(
  image: DownloadedImage,
  requested: { output_format?: 'png' | 'jpeg' | 'webp'; output_quality?: number } | undefined,
): Promise<{ bytes: Buffer; contentType: string }> {
  const format = requested?.output_format;
  if (!format || format === image.format) return { bytes: image.bytes, contentType: image.contentType };
  const quality = requested.output_quality ?? 90;
  const pipeline = sharp(image.bytes, { animated: false });
  const bytes =
    format === 'png'
      ? await pipeline.png({ compressionLevel: 6 }).toBuffer()
      : format === 'jpeg'
        ? await pipeline.flatten({ background: '#ffffff' }).jpeg({ quality }).toBuffer()
        : await pipeline.webp({ quality }).toBuffer();
  return { bytes, contentType: FORMAT_CONTENT_TYPE[format] };
}

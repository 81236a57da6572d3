/**
 * Turn untrusted bytes into an InputImage, or refuse them with a precise code.
 *
 * - The type comes from the bytes (magic numbers), never from a URL or a
 *   Content-Type: JPEG, PNG, WebP, and AVIF (sharp's prebuilt libvips here
 *   decodes AV1 but not HEVC, so HEIC is refused). SVG, GIF, PDF, HTML and
 *   everything else never reach a decoder.
 * - The pixel count is read from the header and refused before decoding
 *   (image_too_large); sharp's limitInputPixels backs that up in the decoder.
 * - Truncated or corrupt data (libvips failOn 'warning', sharp's default:
 *   libjpeg's "corrupt data" warnings count) is image_corrupt.
 * - EXIF orientation is applied; the stored bytes are re-encoded from pixels,
 *   so they carry no metadata at all (no EXIF, GPS, XMP, ICC: colour is
 *   converted to sRGB first).
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { JobError } from '../errors.ts';
import type { InputImage } from '../images/raw.ts';

export type SupportedImageType = 'jpeg' | 'png' | 'webp' | 'avif';

export type SniffResult =
  | { supported: true; type: SupportedImageType; /** WebP only: the VP8L (lossless) codec. */ lossless: boolean }
  | { supported: false; /** What it looks like, for the error message ("GIF", "SVG", ...), or undefined. */ detected: string | undefined };

export interface DecodeOptions {
  /** Most pixels (width x height) accepted; IMAGE_MAX_PIXELS. */
  maxPixels: number;
}

/** The background alpha is flattened onto in `raw` (the stored `bytes` keep their alpha). */
export const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

const JPEG_QUALITY = 95;
const WEBP_QUALITY = 95;

function startsWith(bytes: Buffer, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((b, i) => bytes[offset + i] === b);
}

function ascii(bytes: Buffer, start: number, end: number): string {
  return bytes.subarray(start, Math.min(end, bytes.length)).toString('latin1');
}

/** ISO-BMFF `ftyp` brands (major + compatible), or undefined if the file does not start with one. */
function ftypBrands(bytes: Buffer): string[] | undefined {
  if (bytes.length < 16 || ascii(bytes, 4, 8) !== 'ftyp') return undefined;
  const size = Math.min(bytes.readUInt32BE(0), bytes.length, 4096);
  const brands = [ascii(bytes, 8, 12)];
  for (let i = 16; i + 4 <= size; i += 4) brands.push(ascii(bytes, i, i + 4));
  return brands;
}

/** Whether a WebP file's image data is VP8L (lossless): scan its RIFF chunks. */
function webpIsLossless(bytes: Buffer): boolean {
  let offset = 12;
  for (let n = 0; n < 64 && offset + 8 <= bytes.length; n++) {
    const fourcc = ascii(bytes, offset, offset + 4);
    if (fourcc === 'VP8L') return true;
    if (fourcc === 'VP8 ') return false;
    const size = bytes.readUInt32LE(offset + 4);
    offset += 8 + size + (size % 2);
  }
  return false;
}

/** Name what an unsupported file looks like, for the message only. */
function describeUnsupported(bytes: Buffer): string | undefined {
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38])) return 'GIF';
  if (startsWith(bytes, [0x25, 0x50, 0x44, 0x46])) return 'PDF';
  if (startsWith(bytes, [0x42, 0x4d])) return 'BMP';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  if (startsWith(bytes, [0xff, 0x0a]) || startsWith(bytes, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'JPEG XL';
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00])) return 'ICO';
  if (startsWith(bytes, [0x38, 0x42, 0x50, 0x53])) return 'PSD';
  const brands = ftypBrands(bytes);
  if (brands?.some((b) => /^(heic|heix|hevc|hevx|heim|heis|mif1|msf1)$/.test(b))) return 'HEIC/HEIF';
  const head = ascii(bytes, 0, 1024).replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart().toLowerCase();
  if (head.includes('<svg')) return 'SVG';
  if (head.startsWith('<!doctype html') || head.startsWith('<html') || head.includes('<body')) return 'HTML';
  if (head.startsWith('<?xml')) return 'XML';
  if (head.startsWith('{') || head.startsWith('[')) return 'JSON';
  return undefined;
}

/** Decide the image type from the first bytes alone. */
export function sniffImageType(bytes: Buffer): SniffResult {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { supported: true, type: 'jpeg', lossless: false };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { supported: true, type: 'png', lossless: true };
  if (bytes.length >= 16 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') {
    return { supported: true, type: 'webp', lossless: webpIsLossless(bytes) };
  }
  const brands = ftypBrands(bytes);
  if (brands?.some((b) => b === 'avif' || b === 'avis')) return { supported: true, type: 'avif', lossless: false };
  return { supported: false, detected: describeUnsupported(bytes) };
}

function corrupt(message: string, cause?: unknown): JobError {
  return new JobError('image_corrupt', message, { cause });
}

function tooLarge(width: number, height: number, maxPixels: number): JobError {
  return new JobError(
    'image_too_large',
    `The image is ${width}x${height} = ${width * height} pixels; at most ${maxPixels} are accepted`,
  );
}

/**
 * Validate and decode an untrusted image.
 *
 * Returns: `bytes` re-encoded without metadata in the input's format (AVIF
 * becomes JPEG, or PNG if it has alpha, since InputImage has no AVIF);
 * `width`/`height` after EXIF orientation; `raw` 8-bit sRGB, 3 channels,
 * alpha flattened onto white.
 *
 * Throws JobError image_unsupported, image_corrupt or image_too_large.
 */
export async function decodeImage(bytes: Buffer, opts: DecodeOptions): Promise<InputImage> {
  if (!Number.isInteger(opts.maxPixels) || opts.maxPixels < 1) throw new Error(`maxPixels must be a positive integer`);
  if (!bytes || bytes.length === 0) throw corrupt('The image is empty (0 bytes)');

  const sniffed = sniffImageType(bytes);
  if (!sniffed.supported) {
    const what = sniffed.detected === undefined ? 'This file is not' : `${sniffed.detected} is not`;
    throw new JobError('image_unsupported', `${what} a supported image type; send JPEG, PNG, WebP or AVIF`);
  }

  // Header only: no pixel is decoded here.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, failOn: 'warning' }).metadata();
  } catch (error) {
    throw corrupt(`The ${sniffed.type.toUpperCase()} image cannot be read: ${(error as Error).message}`, error);
  }
  if (sniffed.type === 'avif' && meta.compression !== 'av1') {
    throw new JobError('image_unsupported', `HEIF images compressed with ${meta.compression ?? 'an unknown codec'} are not supported`);
  }
  const expectedFormat = sniffed.type === 'avif' ? 'heif' : sniffed.type;
  if (meta.format !== expectedFormat) {
    throw corrupt(`The file starts like ${sniffed.type.toUpperCase()} but does not decode as one`);
  }
  const headerWidth = meta.width ?? 0;
  const headerHeight = meta.pageHeight ?? meta.height ?? 0;
  if (headerWidth < 1 || headerHeight < 1) throw corrupt('The image header declares no size');
  if (headerWidth * headerHeight > opts.maxPixels) throw tooLarge(headerWidth, headerHeight, opts.maxPixels);

  // One decode: oriented sRGB pixels, alpha kept for the re-encode.
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: 'warning', autoOrient: true })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    const message = (error as Error).message;
    if (/pixel limit/i.test(message)) throw tooLarge(headerWidth, headerHeight, opts.maxPixels);
    throw corrupt(`The ${sniffed.type.toUpperCase()} image is truncated or corrupt: ${message}`, error);
  }
  const { width, height, channels } = decoded.info;
  if (channels !== 3 && channels !== 4) throw corrupt(`Unexpected channel count ${channels} after decoding`);
  const raw = { raw: { width, height, channels } as const };
  const hasAlpha = channels === 4;

  const format: InputImage['format'] =
    sniffed.type === 'avif' ? (hasAlpha ? 'png' : 'jpeg') : sniffed.type;
  const encoder = sharp(decoded.data, raw);
  const encoded =
    format === 'jpeg'
      ? encoder.jpeg({ quality: JPEG_QUALITY })
      : format === 'png'
        ? encoder.png()
        : encoder.webp(sniffed.lossless ? { lossless: true } : { quality: WEBP_QUALITY, alphaQuality: 100 });

  const [stored, rgb] = await Promise.all([
    encoded.toBuffer(),
    hasAlpha
      ? sharp(decoded.data, raw).flatten({ background: FLATTEN_BACKGROUND }).raw().toBuffer()
      : Promise.resolve(decoded.data),
  ]);
  if (rgb.length !== width * height * 3) throw corrupt('Decoded pixel buffer has the wrong size');

  return {
    bytes: stored,
    format,
    width,
    height,
    raw: { data: new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength), width, height, channels: 3 },
  };
}

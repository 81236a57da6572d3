/** Encodes engine output images in the requested format. */
import sharp from 'sharp';
import type { EngineImage } from './engine.ts';

export interface OutputOptions {
  output_format: 'png' | 'jpeg' | 'webp';
  output_quality: number;
}

const CONTENT_TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

export async function encodeOutput(image: EngineImage, options: OutputOptions): Promise<{ bytes: Buffer; contentType: string }> {
  if (image.kind === 'encoded') return { bytes: image.bytes, contentType: image.contentType };
  const { data, width, height, channels } = image.image;
  const pipeline = sharp(data, { raw: { width, height, channels } });
  const format = options.output_format;
  const bytes =
    format === 'png'
      ? await pipeline.png({ compressionLevel: 6 }).toBuffer()
      : format === 'jpeg'
        ? await pipeline.jpeg({ quality: options.output_quality, mozjpeg: false }).toBuffer()
        : await pipeline.webp({ quality: options.output_quality }).toBuffer();
  return { bytes, contentType: CONTENT_TYPES[format] };
}

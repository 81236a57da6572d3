/**
 * decodeImage against real photos and a corpus of hostile files: each hostile
 * file gets its code, nothing crashes, and good files come out oriented,
 * stripped of metadata and as 3-channel RGB.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, sniffImageType } from '../../lib/intake/index.ts';
import { expectJobError, FIXTURES } from './helpers.ts';

const MAX = { maxPixels: 40_000_000 }; // the IMAGE_MAX_PIXELS default
const read = (name: string): Buffer => fs.readFileSync(new URL(name, FIXTURES));

/** The real photos and their sizes (from the fixtures' MANIFEST and their headers). */
const PHOTOS: Array<[string, number, number, 'jpeg' | 'png']> = [
  ['astronaut_eileen_collins_nasa.png', 512, 512, 'png'],
  ['biden.jpg', 970, 2204, 'jpeg'],
  ['noface_cat_chelsea.png', 451, 300, 'png'],
  ['noface_coffee.png', 600, 400, 'png'],
  ['noface_rocket.jpg', 640, 427, 'jpeg'],
  ['obama.jpg', 910, 1137, 'jpeg'],
  ['two_people_obama_biden.jpg', 1126, 661, 'jpeg'],
];

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose header declares width x height, with a token IDAT: a decompression-bomb header. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A real JPEG with its SOF dimensions rewritten. */
function jpegWithDims(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; ) {
    if (out[i] !== 0xff) throw new Error('not at a marker');
    const marker = out[i + 1]!;
    const length = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc3) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + length;
  }
  throw new Error('no SOF marker');
}

/** Deterministic pseudo-random bytes. */
function randomBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const hostile: Array<{ name: string; bytes: () => Promise<Buffer> | Buffer; code: string }> = [
  { name: 'PNG declaring 100000x100000', bytes: () => pngHeader(100_000, 100_000), code: 'image_too_large' },
  { name: 'PNG declaring 2^31-1 x 2^31-1 (past libpng\'s own limits)', bytes: () => pngHeader(0x7fffffff, 0x7fffffff), code: 'image_corrupt' },
  { name: 'JPEG declaring 65000x65000', bytes: () => jpegWithDims(read('noface_rocket.jpg'), 65_000, 65_000), code: 'image_too_large' },
  {
    name: 'real 7000x7000 PNG (small file, 49 Mpx)',
    bytes: () => sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#000' } }).png({ compressionLevel: 9 }).toBuffer(),
    code: 'image_too_large',
  },
  { name: 'truncated JPEG', bytes: () => read('obama.jpg').subarray(0, 140_000), code: 'image_corrupt' },
  { name: 'JPEG cut right after its header', bytes: () => read('obama.jpg').subarray(0, 700), code: 'image_corrupt' },
  { name: 'truncated PNG', bytes: () => read('astronaut_eileen_collins_nasa.png').subarray(0, 300_000), code: 'image_corrupt' },
  {
    name: 'JPEG with its scan replaced by random bytes',
    bytes: () => {
      const j = read('noface_rocket.jpg');
      return Buffer.concat([j.subarray(0, 2000), randomBytes(j.length - 2000, 7)]);
    },
    code: 'image_corrupt',
  },
  { name: 'PNG signature then junk', bytes: () => Buffer.concat([pngHeader(1, 1).subarray(0, 8), randomBytes(5000, 3)]), code: 'image_corrupt' },
  { name: 'JPEG magic only', bytes: () => Buffer.from([0xff, 0xd8, 0xff]), code: 'image_corrupt' },
  { name: 'zero bytes', bytes: () => Buffer.alloc(0), code: 'image_corrupt' },
  {
    name: 'HTML page',
    bytes: () => Buffer.from('<!DOCTYPE html><html><body><img src="x.jpg"></body></html>'),
    code: 'image_unsupported',
  },
  {
    name: 'SVG',
    bytes: () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'),
    code: 'image_unsupported',
  },
  {
    name: 'SVG with XML prolog, BOM and whitespace',
    bytes: () => Buffer.from('\uFEFF  \n<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>'),
    code: 'image_unsupported',
  },
  { name: 'GIF', bytes: () => sharp(read('noface_rocket.jpg')).gif().toBuffer(), code: 'image_unsupported' },
  { name: 'TIFF', bytes: () => sharp(read('noface_rocket.jpg')).tiff().toBuffer(), code: 'image_unsupported' },
  { name: 'BMP header', bytes: () => Buffer.concat([Buffer.from('BM'), randomBytes(100, 9)]), code: 'image_unsupported' },
  { name: 'PDF', bytes: () => Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n'), code: 'image_unsupported' },
  {
    name: 'HEIC (ftyp heic)',
    bytes: () => Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic'), randomBytes(200, 5)]),
    code: 'image_unsupported',
  },
  { name: 'JSON', bytes: () => Buffer.from('{"error":"not found"}'), code: 'image_unsupported' },
  { name: 'random bytes', bytes: () => randomBytes(100_000, 42), code: 'image_unsupported' },
  { name: 'a single byte', bytes: () => Buffer.from([0xff]), code: 'image_unsupported' },
];

describe('hostile files', () => {
  for (const h of hostile) {
    it(`${h.name} -> ${h.code}`, async () => {
      await expectJobError(decodeImage(await h.bytes(), MAX), h.code);
    });
  }

  it('names what it refused', async () => {
    const e = await expectJobError(decodeImage(await sharp(read('noface_rocket.jpg')).gif().toBuffer(), MAX), 'image_unsupported');
    expect(e.message).toMatch(/GIF/);
    const big = await expectJobError(decodeImage(pngHeader(100_000, 100_000), MAX), 'image_too_large');
    expect(big.message).toContain('100000x100000');
    expect(big.retryable).toBe(false);
  });

  it('the pixel limit is exact: width x height equal to it passes, one more is refused', async () => {
    const png = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#888' } }).png().toBuffer();
    expect((await decodeImage(png, { maxPixels: 10_000 })).width).toBe(100);
    await expectJobError(decodeImage(png, { maxPixels: 9_999 }), 'image_too_large');
  });

  it('the process is still fine afterwards: a real photo decodes', async () => {
    const img = await decodeImage(read('noface_rocket.jpg'), MAX);
    expect([img.width, img.height]).toEqual([640, 427]);
  });
});

describe('real photos', () => {
  for (const [name, width, height, format] of PHOTOS) {
    it(`${name}: ${width}x${height} ${format}, RGB, no metadata`, async () => {
      const img = await decodeImage(read(name), MAX);
      expect([img.width, img.height, img.format]).toEqual([width, height, format]);
      expect(img.raw).toMatchObject({ width, height, channels: 3 });
      expect(img.raw.data.length).toBe(width * height * 3);
      const meta = await sharp(img.bytes).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, width, height]);
      expect(meta.exif).toBeUndefined();
      expect(meta.icc).toBeUndefined();
      expect(meta.xmp).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
    });
  }
});

describe('orientation, metadata and pixel formats', () => {
  let original: Buffer;
  beforeAll(() => {
    original = read('obama.jpg');
  });

  it('an EXIF-rotated copy (orientation 6) comes out upright', async () => {
    const rotated = await sharp(original).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const stored = await sharp(rotated).metadata();
    expect([stored.width, stored.height, stored.orientation]).toEqual([910, 1137, 6]); // stored sideways
    const img = await decodeImage(rotated, MAX);
    expect([img.width, img.height]).toEqual([1137, 910]);
    // Same pixels as rotating the original 90 degrees clockwise.
    const expected = await sharp(original).rotate(90).removeAlpha().raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff += Math.abs(expected[i]! - img.raw.data[i]!);
    expect(diff / expected.length).toBeLessThan(4);
    // And not the same as leaving it sideways (the comparison can tell).
    const sideways = await sharp(original).rotate(270).removeAlpha().raw().toBuffer();
    let wrong = 0;
    for (let i = 0; i < sideways.length; i++) wrong += Math.abs(sideways[i]! - img.raw.data[i]!);
    expect(wrong / sideways.length).toBeGreaterThan(20);
    const out = await sharp(img.bytes).metadata();
    expect([out.width, out.height, out.orientation, out.exif]).toEqual([1137, 910, undefined, undefined]);
  });

  it('drops EXIF (camera, GPS) and XMP from the stored bytes', async () => {
    const tagged = await sharp(original)
      .withExif({ IFD0: { Make: 'SecretCam', Copyright: 'someone' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
      .jpeg()
      .toBuffer();
    const before = await sharp(tagged).metadata();
    expect(before.exif).toBeDefined();
    const img = await decodeImage(tagged, MAX);
    expect(img.bytes.includes(Buffer.from('SecretCam'))).toBe(false);
    const after = await sharp(img.bytes).metadata();
    expect(after.exif).toBeUndefined();
    expect(after.xmp).toBeUndefined();
  });

  it('PNG with alpha: stored bytes stay PNG with alpha; raw is flattened onto white', async () => {
    const rgba = Buffer.alloc(4 * 2 * 1);
    rgba.set([255, 0, 0, 255, 0, 0, 255, 0]); // opaque red, fully transparent blue
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
    const img = await decodeImage(png, MAX);
    expect(img.format).toBe('png');
    expect(Array.from(img.raw.data)).toEqual([255, 0, 0, 255, 255, 255]);
    const meta = await sharp(img.bytes).metadata();
    expect(meta.hasAlpha).toBe(true);
    const back = await sharp(img.bytes).raw().toBuffer();
    expect(Array.from(back.subarray(0, 4))).toEqual([255, 0, 0, 255]);
    expect(back[7]).toBe(0);
  });

  it('greyscale, 16-bit and CMYK inputs come out as 8-bit RGB', async () => {
    const grey = await sharp(original).greyscale().png().toBuffer();
    const g = await decodeImage(grey, MAX);
    expect(g.raw.channels).toBe(3);
    expect(g.raw.data[0]).toBe(g.raw.data[1]);
    expect(g.raw.data[1]).toBe(g.raw.data[2]);
    const sixteen = await sharp(original).resize(64).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(sixteen).metadata()).depth).toBe('ushort');
    const s = await decodeImage(sixteen, MAX);
    expect(s.raw.data.length).toBe(s.width * s.height * 3);
    const cmyk = await sharp(original).resize(64).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const c = await decodeImage(cmyk, MAX);
    expect(c.raw.channels).toBe(3);
    expect(c.raw.data.length).toBe(c.width * c.height * 3);
  });

  it('WebP keeps its kind: lossless stays lossless, lossy stays lossy', async () => {
    const lossless = await sharp(original).resize(200).webp({ lossless: true }).toBuffer();
    const lossy = await sharp(original).resize(200).webp({ quality: 80 }).toBuffer();
    expect(sniffImageType(lossless)).toEqual({ supported: true, type: 'webp', lossless: true });
    expect(sniffImageType(lossy)).toEqual({ supported: true, type: 'webp', lossless: false });
    const a = await decodeImage(lossless, MAX);
    const b = await decodeImage(lossy, MAX);
    expect([a.format, b.format]).toEqual(['webp', 'webp']);
    expect(sniffImageType(a.bytes)).toMatchObject({ lossless: true });
    expect(sniffImageType(b.bytes)).toMatchObject({ lossless: false });
    // Lossless really is: the stored pixels equal the decoded ones.
    expect((await sharp(a.bytes).raw().toBuffer()).equals(Buffer.from(a.raw.data))).toBe(true);
  });

  it('AVIF is accepted and stored as JPEG (InputImage has no AVIF)', async () => {
    const avif = await sharp(original).resize(300).avif().toBuffer();
    expect(sniffImageType(avif)).toMatchObject({ supported: true, type: 'avif' });
    const img = await decodeImage(avif, MAX);
    expect([img.format, img.width, img.height]).toEqual(['jpeg', 300, 375]);
    expect((await sharp(img.bytes).metadata()).format).toBe('jpeg');
  });
});

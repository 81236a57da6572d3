/**
 * The loader as the daemon and the API build it, from configuration: real
 * photos fetched from a loopback server that FETCH_ALLOW_HOSTS lets through,
 * and hostile files served with misleading Content-Types.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import { checkImageUrl, createImageLoader, type ImageLoader } from '../../lib/intake/index.ts';
import { expectJobError, expectJobErrorSync, FIXTURES, startHttpServer, type TestServer } from './helpers.ts';

const PHOTOS: Array<[string, number, number]> = [
  ['astronaut_eileen_collins_nasa.png', 512, 512],
  ['biden.jpg', 970, 2204],
  ['noface_cat_chelsea.png', 451, 300],
  ['noface_coffee.png', 600, 400],
  ['noface_rocket.jpg', 640, 427],
  ['obama.jpg', 910, 1137],
  ['two_people_obama_biden.jpg', 1126, 661],
];
const MAX_BYTES = 2 * 1024 * 1024;

let server: TestServer;
let loader: ImageLoader;
let allowHosts: string[];
/** path -> [content-type, body] */
const files = new Map<string, [string, Buffer]>();

function bombPng(): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

beforeAll(async () => {
  for (const [name] of PHOTOS) {
    files.set(`/photos/${name}`, ['application/octet-stream', fs.readFileSync(new URL(name, FIXTURES))]);
  }
  const obama = fs.readFileSync(new URL('obama.jpg', FIXTURES));
  files.set('/rotated.jpg', ['image/jpeg', await sharp(obama).withMetadata({ orientation: 6 }).jpeg().toBuffer()]);
  files.set('/jpeg-as-text', ['text/plain', fs.readFileSync(new URL('noface_rocket.jpg', FIXTURES))]);
  files.set('/html-as-jpeg.jpg', ['image/jpeg', Buffer.from('<!doctype html><title>404</title><h1>Not here</h1>')]);
  files.set('/drawing.svg', ['image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')]);
  files.set('/anim.gif', ['image/gif', await sharp(obama).resize(50).gif().toBuffer()]);
  files.set('/bomb.png', ['image/png', bombPng()]);
  files.set('/truncated.jpg', ['image/jpeg', obama.subarray(0, obama.length / 3)]);
  files.set('/empty.jpg', ['image/jpeg', Buffer.alloc(0)]);
  files.set('/padded.jpg', ['image/jpeg', Buffer.concat([obama, Buffer.alloc(MAX_BYTES)])]);

  server = await startHttpServer((req, res) => {
    const file = files.get(req.url ?? '');
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0], 'content-length': file[1].length }).end(file[1]);
  });
  allowHosts = [`127.0.0.1:${server.port}`];
  const config = loadConfig({
    FETCH_ALLOW_HOSTS: allowHosts.join(','),
    FETCH_CONNECT_TIMEOUT_MS: '500',
    FETCH_TIMEOUT_MS: '5000',
    FETCH_MAX_BYTES: String(MAX_BYTES),
  });
  expect(config.IMAGE_MAX_PIXELS).toBe(40_000_000);
  loader = createImageLoader(config);
});

afterAll(async () => {
  await server?.close();
});

describe('loading from an allowed loopback server', () => {
  it('the real photos decode to their sizes', async () => {
    for (const [name, width, height] of PHOTOS) {
      const url = `${server.origin}/photos/${name}`;
      expect(checkImageUrl(url, allowHosts).href).toBe(url);
      const img = await loader.load(url);
      expect([name, img.width, img.height, img.raw.channels]).toEqual([name, width, height, 3]);
    }
  });

  it('an EXIF-rotated photo comes out upright', async () => {
    const img = await loader.load(`${server.origin}/rotated.jpg`);
    expect([img.width, img.height]).toEqual([1137, 910]);
    expect((await sharp(img.bytes).metadata()).orientation).toBeUndefined();
  });

  it('the type comes from the bytes, not the Content-Type', async () => {
    expect((await loader.load(`${server.origin}/jpeg-as-text`)).format).toBe('jpeg');
    await expectJobError(loader.load(`${server.origin}/html-as-jpeg.jpg`), 'image_unsupported');
    await expectJobError(loader.load(`${server.origin}/drawing.svg`), 'image_unsupported');
    await expectJobError(loader.load(`${server.origin}/anim.gif`), 'image_unsupported');
  });

  it('hostile files over HTTP get their codes', async () => {
    await expectJobError(loader.load(`${server.origin}/bomb.png`), 'image_too_large');
    await expectJobError(loader.load(`${server.origin}/truncated.jpg`), 'image_corrupt');
    await expectJobError(loader.load(`${server.origin}/empty.jpg`), 'image_corrupt');
    await expectJobError(loader.load(`${server.origin}/padded.jpg`), 'fetch_too_large');
    const missing = await expectJobError(loader.load(`${server.origin}/nope.jpg`), 'fetch_failed');
    expect([missing.status, missing.retryable]).toEqual([404, false]);
  });

  it('decode() applies the same checks to uploaded bytes', async () => {
    const [, body] = files.get('/rotated.jpg')!;
    expect((await loader.decode(body)).width).toBe(1137);
    await expectJobError(loader.decode(files.get('/bomb.png')![1]), 'image_too_large');
    await expectJobError(loader.decode(files.get('/drawing.svg')![1]), 'image_unsupported');
  });

  it('honours the abort signal', async () => {
    await expectJobError(loader.load(`${server.origin}/photos/obama.jpg`, AbortSignal.abort()), 'canceled');
  });
});

describe('without FETCH_ALLOW_HOSTS (the default)', () => {
  it('the same loopback server is forbidden, at request time and at fetch time', async () => {
    const closed = createImageLoader(loadConfig({}));
    const before = server.connections;
    const url = `${server.origin}/photos/obama.jpg`;
    expectJobErrorSync(() => checkImageUrl(url, []), 'url_forbidden');
    await expectJobError(closed.load(url), 'url_forbidden');
    expect(server.connections).toBe(before);
  });

  it('an allow-list entry with a port allows only that port', () => {
    expectJobErrorSync(() => checkImageUrl(`http://127.0.0.1:${server.port + 1}/x.jpg`, allowHosts), 'url_forbidden');
    expect(() => checkImageUrl(`http://127.0.0.1:${server.port}/x.jpg`, [`127.0.0.1`])).not.toThrow();
  });
});

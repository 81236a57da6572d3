/**
 * Supabase Storage through the real @supabase/supabase-js client, pointed at
 * a local server that speaks the Storage API's object endpoints.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createSupabaseStorage } from '../../lib/storage/supabase.ts';

const objects = new Map<string, { body: Buffer; type: string; cacheControl: string | undefined }>();
const requests: Array<{ method: string; url: string; auth: string | undefined }> = [];
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization });
    const url = new URL(req.url!, 'http://x');
    const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.headers.authorization !== 'Bearer service-key') return json(401, { statusCode: '401', error: 'Unauthorized', message: 'bad key' });
    let m: RegExpMatchArray | null;
    if (req.method === 'POST' && (m = url.pathname.match(/^\/storage\/v1\/object\/sign\/([^/]+)\/(.+)$/))) {
      const key = `${m[1]}/${m[2]}`;
      if (!objects.has(key)) return json(404, { statusCode: '404', error: 'not_found', message: 'Object not found' });
      const { expiresIn } = JSON.parse(body.toString()) as { expiresIn: number };
      return json(200, { signedURL: `/object/sign/${key}?token=tok-${expiresIn}` });
    }
    if (req.method === 'POST' && (m = url.pathname.match(/^\/storage\/v1\/object\/([^/]+)\/(.+)$/))) {
      const key = `${m[1]}/${m[2]}`;
      if (objects.has(key) && req.headers['x-upsert'] !== 'true') return json(409, { statusCode: '409', error: 'Duplicate', message: 'The resource already exists' });
      objects.set(key, { body, type: String(req.headers['content-type']), cacheControl: req.headers['cache-control'] });
      return json(200, { Id: 'id-1', Key: key });
    }
    if (req.method === 'GET' && (m = url.pathname.match(/^\/storage\/v1\/object\/([^/]+)\/(.+)$/))) {
      const o = objects.get(`${m[1]}/${m[2]}`);
      if (!o) return json(400, { statusCode: '404', error: 'not_found', message: 'Object not found' });
      return res.writeHead(200, { 'content-type': o.type }).end(o.body);
    }
    if (req.method === 'DELETE' && (m = url.pathname.match(/^\/storage\/v1\/object\/([^/]+)$/))) {
      const { prefixes } = JSON.parse(body.toString()) as { prefixes: string[] };
      for (const p of prefixes) objects.delete(`${m[1]}/${p}`);
      return json(200, prefixes.map((name) => ({ name })));
    }
    json(404, { statusCode: '404', error: 'not_found', message: `no route ${req.method} ${url.pathname}` });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const key = 'results/0b6c3b2e-2f4e-4e55-9d1c-1f1e2d3c4b5a/abcdef0123456789.png';

test('public bucket: upload with content type and cache headers, public URL, read back, delete', async () => {
  const storage = createSupabaseStorage({ url: base, serviceKey: 'service-key', bucket: 'results', signedUrlExpiresS: 0 });
  const url = await storage.put(key, Buffer.from('png-bytes'), 'image/png');
  expect(url).toBe(`${base}/storage/v1/object/public/results/${key}`);
  const stored = objects.get(`results/${key}`)!;
  expect(stored.type).toBe('image/png');
  expect(stored.cacheControl).toBe('max-age=31536000');
  expect((await storage.get(key))?.bytes.toString()).toBe('png-bytes');
  await storage.delete([key]);
  expect(objects.has(`results/${key}`)).toBe(false);
  expect(await storage.get(key)).toBeUndefined();
});

test('private bucket: a signed URL with the configured expiry', async () => {
  const storage = createSupabaseStorage({ url: base, serviceKey: 'service-key', bucket: 'private', signedUrlExpiresS: 600 });
  const url = await storage.put(key, Buffer.from('x'), 'image/png');
  expect(url).toBe(`${base}/storage/v1/object/sign/private/${key}?token=tok-600`);
});

test('errors from the Storage API surface with their message', async () => {
  const wrongKey = createSupabaseStorage({ url: base, serviceKey: 'wrong', bucket: 'results', signedUrlExpiresS: 0 });
  await expect(wrongKey.put(key, Buffer.from('x'), 'image/png')).rejects.toThrow(/bad key/);
  const storage = createSupabaseStorage({ url: base, serviceKey: 'service-key', bucket: 'dupes', signedUrlExpiresS: 0 });
  await storage.put(key, Buffer.from('x'), 'image/png');
  await expect(storage.put(key, Buffer.from('y'), 'image/png')).rejects.toThrow(/already exists/);
});

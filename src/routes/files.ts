/** Serves result files of the local store at stable, unguessable, cacheable URLs. */
import { Hono } from 'hono';
import type { Storage } from '../../lib/storage/index.ts';
import { ApiError } from '../http/errors.ts';

export function fileRoutes(storage: Storage): Hono {
  const app = new Hono();
  app.get('/files/results/:job/:name', async (c) => {
    const key = `results/${c.req.param('job')}/${c.req.param('name')}`;
    const object = await storage.get(key);
    if (!object) throw new ApiError(404, 'not_found', 'No such file');
    return c.body(new Uint8Array(object.bytes), 200, {
      'Content-Type': object.contentType,
      'Content-Length': String(object.bytes.length),
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
    });
  });
  return app;
}

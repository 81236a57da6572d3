/** The Hono application: routes and the JSON error contract. No I/O here; deps come from main or tests. */
import { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';
import { errorBody, respondError } from './http/errors.ts';
import { fileRoutes } from './routes/files.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';

export function createApp(deps: ApiDeps): Hono {
  const app = new Hono();
  app.route('/', healthRoutes(deps));
  app.route('/', jobRoutes(deps));
  if (deps.storage.kind === 'local') app.route('/', fileRoutes(deps.storage));
  app.notFound((c) => c.json(errorBody('not_found', `No route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404));
  app.onError((error, c) => {
    const response = respondError(c, error);
    if (response.status >= 500) deps.log.error({ err: error, path: c.req.path }, 'request failed');
    return response;
  });
  return app;
}

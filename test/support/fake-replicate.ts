/**
 * A local HTTP server on 127.0.0.1 that speaks the parts of Replicate's API
 * the engines use, so tests run the official `replicate` client against it
 * (REPLICATE_BASE_URL = fake.url, REPLICATE_API_TOKEN = fake.token):
 *
 *   GET    /v1/models/{owner}/{name}               latest_version.id = FAKE_REPLICATE_VERSION
 *   POST   /v1/predictions                         {version, input}; honours `Prefer: wait[=n]`
 *   POST   /v1/models/{owner}/{name}/predictions   {input}
 *   GET    /v1/predictions/{id}
 *   POST   /v1/predictions/{id}/cancel
 *   POST   /v1/files   (multipart `content`)  GET/DELETE /v1/files/{id}
 *   GET    /delivery/{id}/{file}                   the output file (no auth, like replicate.delivery)
 *
 * A prediction goes starting -> processing (tqdm-style progress in `logs`)
 * -> the scenario's outcome, on timers. Its output file is a real image: by
 * default a cartoon-like rendering (median filter, boosted saturation,
 * quantised palette) of the first image input, made with sharp.
 *
 * Tests change `fake.scenario` (reset by `fake.reset()`), inject scripted
 * answers per route (429 with Retry-After, 500, malformed bodies), and read
 * what arrived in `fake.requests`, `fake.predictions` and `fake.cancels`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

export const FAKE_REPLICATE_VERSION = 'f'.repeat(64);

export type FakeReplicateRoute =
  | 'models.get'
  | 'predictions.create'
  | 'predictions.get'
  | 'predictions.cancel'
  | 'files.create'
  | 'files.get'
  | 'files.delete'
  | 'output';

export interface FakeInjection {
  route: FakeReplicateRoute;
  status: number;
  headers?: Record<string, string>;
  /** Raw body; default: a Replicate-style problem JSON for errors, or `{}`. */
  body?: string;
  /** How many requests on the route it answers (default 1). */
  times?: number;
}

export interface FakeReplicateScenario {
  /** What the prediction ends in. `hang` never finishes (until cancelled). */
  outcome: 'succeeded' | 'failed' | 'canceled' | 'hang';
  /** Milliseconds in `starting`, then in `processing`. */
  startMs: number;
  runMs: number;
  /** Replicate's error text for `failed`. */
  error: string;
  /** Shape of a succeeded prediction's output. `{ raw }` puts that value as it is (malformed outputs). */
  output: 'url' | 'url-array' | 'data-uri' | { raw: unknown };
  /** Bytes of the output file instead of the cartoon rendering (e.g. something that is not an image). */
  outputBytes?: Buffer;
  outputContentType?: string;
  /** Longest `Prefer: wait` honoured, in seconds (Replicate: 60). 0: answer create at once. */
  maxSyncWaitS: number;
  /** Scripted answers served before normal handling, in order, per route. */
  inject: FakeInjection[];
}

export interface FakePrediction {
  id: string;
  version?: string;
  model?: string;
  input: Record<string, unknown>;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  logs: string;
  output: unknown;
  error: string | null;
  createdAt: number;
  /** Set when a cancel request arrived for it. */
  canceledByClient: boolean;
}

export interface FakeRequest {
  method: string;
  path: string;
  route: FakeReplicateRoute | 'unknown';
  headers: http.IncomingHttpHeaders;
  at: number;
}

export interface FakeReplicate {
  /** Base API URL (…/v1): the value for REPLICATE_BASE_URL. */
  readonly url: string;
  readonly origin: string;
  readonly token: string;
  scenario: FakeReplicateScenario;
  readonly requests: FakeRequest[];
  readonly predictions: Map<string, FakePrediction>;
  /** Prediction ids in the order cancel requests arrived. */
  readonly cancels: string[];
  readonly files: Map<string, { bytes: Buffer; contentType: string; deleted: boolean }>;
  /** Requests seen on a route. */
  count(route: FakeReplicateRoute): number;
  /** Default scenario, no injections, history cleared. */
  reset(): void;
  close(): Promise<void>;
}

export function defaultScenario(): FakeReplicateScenario {
  return { outcome: 'succeeded', startMs: 20, runMs: 80, error: 'CUDA out of memory', output: 'url', maxSyncWaitS: 60, inject: [] };
}

/** The fake's idea of a cartoon: smoothed, saturated, quantised colours. Real pixels, deterministic. */
export async function cartoonRendering(image: Buffer): Promise<Buffer> {
  return sharp(image).rotate().median(5).modulate({ saturation: 1.8 }).png({ palette: true, colours: 24, dither: 0 }).toBuffer();
}

function sniff(bytes: Buffer): string {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  return 'application/octet-stream';
}

export async function startFakeReplicate(options: { token?: string } = {}): Promise<FakeReplicate> {
  const token = options.token ?? 'r8_fake_test_token';
  const requests: FakeRequest[] = [];
  const predictions = new Map<string, FakePrediction>();
  const outputs = new Map<string, { bytes: Buffer; contentType: string }>();
  const files = new Map<string, { bytes: Buffer; contentType: string; deleted: boolean }>();
  const cancels: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Map<string, Set<() => void>>();
  let nextId = 1;
  let origin = '';

  const fake = {
    scenario: defaultScenario(),
  } as { scenario: FakeReplicateScenario };

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const notify = (id: string): void => {
    for (const wake of waiters.get(id) ?? []) wake();
    waiters.delete(id);
  };

  const view = (p: FakePrediction): Record<string, unknown> => ({
    id: p.id,
    model: p.model ?? 'fake/model',
    version: p.version ?? FAKE_REPLICATE_VERSION,
    input: p.input,
    logs: p.logs,
    output: p.status === 'succeeded' ? p.output : null,
    error: p.error,
    status: p.status,
    created_at: new Date(p.createdAt).toISOString(),
    urls: {
      get: `${origin}/v1/predictions/${p.id}`,
      cancel: `${origin}/v1/predictions/${p.id}/cancel`,
      web: `https://replicate.com/p/${p.id}`,
    },
    ...(p.status === 'succeeded' ? { metrics: { predict_time: (Date.now() - p.createdAt) / 1000 } } : {}),
  });

  async function inputImage(input: Record<string, unknown>): Promise<Buffer | undefined> {
    for (const value of Object.values(input)) {
      if (typeof value !== 'string') continue;
      const data = /^data:[^;,]*;base64,(.*)$/s.exec(value);
      if (data) return Buffer.from(data[1] ?? '', 'base64');
      const file = /\/v1\/files\/([^/]+)$/.exec(value);
      if (file && value.startsWith(origin)) return files.get(file[1] ?? '')?.bytes;
    }
    return undefined;
  }

  async function finishSucceeded(p: FakePrediction, scenario: FakeReplicateScenario): Promise<void> {
    let bytes = scenario.outputBytes;
    let contentType = scenario.outputContentType;
    if (!bytes) {
      const source = await inputImage(p.input);
      bytes = source
        ? await cartoonRendering(source)
        : await sharp({ create: { width: 64, height: 64, channels: 3, background: '#e0a040' } }).png().toBuffer();
    }
    contentType ??= sniff(bytes);
    const ext = contentType === 'image/jpeg' ? 'jpg' : contentType.startsWith('image/') ? contentType.slice(6) : 'bin';
    const fileUrl = `${origin}/delivery/${p.id}/output.${ext}`;
    outputs.set(p.id, { bytes, contentType });
    const shape = scenario.output;
    p.output =
      typeof shape === 'object'
        ? shape.raw
        : shape === 'url-array'
          ? [fileUrl]
          : shape === 'data-uri'
            ? `data:${contentType};base64,${bytes.toString('base64')}`
            : fileUrl;
  }

  function startPrediction(p: FakePrediction): void {
    const scenario = fake.scenario;
    later(scenario.startMs, () => {
      if (p.status !== 'starting') return;
      p.status = 'processing';
      p.logs = 'Booting model\n';
      const steps = 4;
      for (let i = 1; i <= steps; i++) {
        later((scenario.runMs * i) / (steps + 1), () => {
          if (p.status !== 'processing') return;
          const pct = Math.round((100 * i) / steps);
          p.logs += `${String(pct).padStart(3)}%|${'#'.repeat(i * 2).padEnd(steps * 2)}| ${i}/${steps} [00:0${i}<00:00, 1.00it/s]\n`;
        });
      }
      if (scenario.outcome === 'hang') return;
      later(scenario.runMs, () => {
        if (p.status !== 'processing') return;
        if (scenario.outcome === 'failed') {
          p.status = 'failed';
          p.error = scenario.error;
          notify(p.id);
        } else if (scenario.outcome === 'canceled') {
          p.status = 'canceled';
          notify(p.id);
        } else {
          finishSucceeded(p, scenario).then(
            () => {
              if (p.status !== 'processing') return;
              p.status = 'succeeded';
              notify(p.id);
            },
            (error: unknown) => {
              p.status = 'failed';
              p.error = `fake: could not render output: ${(error as Error).message}`;
              notify(p.id);
            },
          );
        }
      });
    });
  }

  function waitForTerminal(p: FakePrediction, seconds: number): Promise<void> {
    if (p.status === 'succeeded' || p.status === 'failed' || p.status === 'canceled' || seconds <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        timers.delete(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        timers.delete(timer);
        waiters.get(p.id)?.delete(wake);
        resolve();
      }, seconds * 1000);
      timers.add(timer);
      let set = waiters.get(p.id);
      if (!set) waiters.set(p.id, (set = new Set()));
      set.add(wake);
    });
  }

  function routeOf(method: string, path: string): { route: FakeReplicateRoute | 'unknown'; params: string[] } {
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/v1\/models\/([^/]+)\/([^/]+)$/.exec(path))) return { route: 'models.get', params: [m[1]!, m[2]!] };
    if (method === 'POST' && path === '/v1/predictions') return { route: 'predictions.create', params: [] };
    if (method === 'POST' && (m = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(path))) {
      return { route: 'predictions.create', params: [m[1]!, m[2]!] };
    }
    if (method === 'GET' && (m = /^\/v1\/predictions\/([^/]+)$/.exec(path))) return { route: 'predictions.get', params: [m[1]!] };
    if (method === 'POST' && (m = /^\/v1\/predictions\/([^/]+)\/cancel$/.exec(path))) return { route: 'predictions.cancel', params: [m[1]!] };
    if (method === 'POST' && path === '/v1/files') return { route: 'files.create', params: [] };
    if (method === 'GET' && (m = /^\/v1\/files\/([^/]+)$/.exec(path))) return { route: 'files.get', params: [m[1]!] };
    if (method === 'DELETE' && (m = /^\/v1\/files\/([^/]+)$/.exec(path))) return { route: 'files.delete', params: [m[1]!] };
    if (method === 'GET' && (m = /^\/delivery\/([^/]+)\/[^/]+$/.exec(path))) return { route: 'output', params: [m[1]!] };
    return { route: 'unknown', params: [] };
  }

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };
  const problem = (res: http.ServerResponse, status: number, detail: string): void =>
    send(res, status, { title: http.STATUS_CODES[status], detail, status }, { 'content-type': 'application/problem+json' });

  async function readBody(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const { route, params } = routeOf(method, path);
    requests.push({ method, path, route, headers: req.headers, at: Date.now() });
    const body = await readBody(req);

    if (route !== 'unknown') {
      const index = fake.scenario.inject.findIndex((i) => i.route === route && (i.times ?? 1) > 0);
      const injection = fake.scenario.inject[index];
      if (injection) {
        injection.times = (injection.times ?? 1) - 1;
        const fallback = injection.status >= 400 ? { title: http.STATUS_CODES[injection.status], detail: 'injected', status: injection.status } : {};
        send(res, injection.status, injection.body ?? fallback, injection.headers);
        return;
      }
    }

    if (route === 'output') {
      const out = outputs.get(params[0]!);
      if (!out) return problem(res, 404, 'no such file');
      res.writeHead(200, { 'content-type': out.contentType, 'content-length': String(out.bytes.length) });
      res.end(out.bytes);
      return;
    }
    if (route === 'unknown') return problem(res, 404, `fake replicate: no route for ${method} ${path}`);
    if (req.headers.authorization !== `Bearer ${token}`) return problem(res, 401, 'You did not pass a valid authentication token');

    switch (route) {
      case 'models.get':
        return send(res, 200, {
          owner: params[0],
          name: params[1],
          visibility: 'public',
          latest_version: { id: FAKE_REPLICATE_VERSION, created_at: new Date(0).toISOString() },
        });
      case 'predictions.create': {
        let parsed: { version?: unknown; input?: unknown };
        try {
          parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
        } catch {
          return problem(res, 400, 'body is not JSON');
        }
        if (params.length === 0 && typeof parsed.version !== 'string') return problem(res, 422, 'version is required');
        if (typeof parsed.input !== 'object' || parsed.input === null) return problem(res, 422, 'input is required');
        const id = `fakepred${String(nextId++).padStart(6, '0')}`;
        const p: FakePrediction = {
          id,
          ...(typeof parsed.version === 'string' ? { version: parsed.version } : {}),
          ...(params.length === 2 ? { model: `${params[0]}/${params[1]}` } : {}),
          input: parsed.input as Record<string, unknown>,
          status: 'starting',
          logs: '',
          output: null,
          error: null,
          createdAt: Date.now(),
          canceledByClient: false,
        };
        predictions.set(id, p);
        startPrediction(p);
        const prefer = /(?:^|[;,\s])wait(?:=(\d+))?/.exec(String(req.headers.prefer ?? ''));
        if (prefer) {
          const asked = prefer[1] === undefined ? 60 : Number(prefer[1]);
          await waitForTerminal(p, Math.min(asked, fake.scenario.maxSyncWaitS));
        }
        return send(res, 201, view(p));
      }
      case 'predictions.get': {
        const p = predictions.get(params[0]!);
        return p ? send(res, 200, view(p)) : problem(res, 404, 'Not found');
      }
      case 'predictions.cancel': {
        const p = predictions.get(params[0]!);
        cancels.push(params[0]!);
        if (!p) return problem(res, 404, 'Not found');
        p.canceledByClient = true;
        if (p.status === 'starting' || p.status === 'processing') {
          p.status = 'canceled';
          notify(p.id);
        }
        return send(res, 200, view(p));
      }
      case 'files.create': {
        const form = await new Request('http://x/', {
          method: 'POST',
          headers: { 'content-type': String(req.headers['content-type'] ?? '') },
          body: new Uint8Array(body),
        }).formData();
        const content = form.get('content');
        if (!(content instanceof Blob)) return problem(res, 400, 'content is required');
        const id = `fakefile${String(nextId++).padStart(6, '0')}`;
        const bytes = Buffer.from(await content.arrayBuffer());
        files.set(id, { bytes, contentType: content.type || 'application/octet-stream', deleted: false });
        return send(res, 201, {
          id,
          content_type: content.type,
          size: bytes.length,
          checksums: {},
          metadata: {},
          created_at: new Date().toISOString(),
          expires_at: null,
          urls: { get: `${origin}/v1/files/${id}` },
        });
      }
      case 'files.get': {
        const file = files.get(params[0]!);
        if (!file || file.deleted) return problem(res, 404, 'Not found');
        res.writeHead(200, { 'content-type': file.contentType });
        res.end(file.bytes);
        return;
      }
      case 'files.delete': {
        const file = files.get(params[0]!);
        if (!file || file.deleted) return problem(res, 404, 'Not found');
        file.deleted = true;
        res.writeHead(204);
        res.end();
        return;
      }
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) problem(res, 500, `fake replicate crashed: ${(error as Error).message}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return Object.assign(fake, {
    url: `${origin}/v1`,
    origin,
    token,
    requests,
    predictions,
    cancels,
    files,
    count: (route: FakeReplicateRoute) => requests.filter((r) => r.route === route).length,
    reset() {
      fake.scenario = defaultScenario();
      requests.length = 0;
      cancels.length = 0;
      predictions.clear();
      outputs.clear();
      files.clear();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const id of [...waiters.keys()]) notify(id);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

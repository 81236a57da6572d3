/**
 * A local HTTP server on 127.0.0.1 that speaks OpenAI's chat completions API
 * (POST /v1/chat/completions), so tests run the official `openai` client
 * against it (OPENAI_BASE_URL = fake.url, OPENAI_API_KEY = fake.apiKey).
 *
 * Tests set `fake.scenario`: the reply text (or a function of the request),
 * a delay before answering, and scripted answers (500, malformed bodies)
 * served first. `fake.requests` holds the parsed request bodies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeOpenAIInjection {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** How many requests it answers (default 1). */
  times?: number;
}

export interface FakeOpenAIScenario {
  reply: string | ((body: ChatRequestBody) => string);
  /** Set to answer with a refusal instead of content. */
  refusal?: string;
  delayMs: number;
  inject: FakeOpenAIInjection[];
}

export interface ChatRequestBody {
  model?: string;
  messages?: Array<{ role: string; content: unknown }>;
  [key: string]: unknown;
}

export interface FakeOpenAI {
  /** Base URL (…/v1): the value for OPENAI_BASE_URL. */
  readonly url: string;
  readonly apiKey: string;
  scenario: FakeOpenAIScenario;
  /** Chat completion request bodies, in order (including those answered by injections). */
  readonly requests: ChatRequestBody[];
  /** Requests that reached the chat completions route. */
  calls(): number;
  reset(): void;
  close(): Promise<void>;
}

export const FAKE_DESCRIPTION = 'a smiling man in his fifties, medium brown skin, short greying black hair, clean-shaven';

export function defaultOpenAIScenario(): FakeOpenAIScenario {
  return { reply: FAKE_DESCRIPTION, delayMs: 0, inject: [] };
}

export async function startFakeOpenAI(options: { apiKey?: string } = {}): Promise<FakeOpenAI> {
  const apiKey = options.apiKey ?? 'sk-fake-test-key';
  const requests: ChatRequestBody[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const fake = { scenario: defaultOpenAIScenario() } as { scenario: FakeOpenAIScenario };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const error = (res: http.ServerResponse, status: number, message: string, type: string): void =>
    send(res, status, { error: { message, type, param: null, code: null } });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'POST' || path !== '/v1/chat/completions') return error(res, 404, `no route ${req.method} ${path}`, 'invalid_request_error');
    let body: ChatRequestBody;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody;
    } catch {
      return error(res, 400, 'body is not JSON', 'invalid_request_error');
    }
    requests.push(body);
    const scenario = fake.scenario;
    if (scenario.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, scenario.delayMs));
    if (res.destroyed) return;
    const injection = scenario.inject.find((i) => (i.times ?? 1) > 0);
    if (injection) {
      injection.times = (injection.times ?? 1) - 1;
      return send(res, injection.status, injection.body ?? { error: { message: 'injected', type: 'server_error' } }, injection.headers);
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) return error(res, 401, 'Incorrect API key provided', 'invalid_request_error');
    const content = scenario.refusal ? null : typeof scenario.reply === 'function' ? scenario.reply(body) : scenario.reply;
    send(res, 200, {
      id: `chatcmpl-fake${requests.length}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model ?? 'fake',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, refusal: scenario.refusal ?? null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
    });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) error(res, 500, `fake openai crashed: ${(e as Error).message}`, 'server_error');
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return Object.assign(fake, {
    url: `${origin}/v1`,
    apiKey,
    requests,
    calls: () => requests.length,
    reset() {
      fake.scenario = defaultOpenAIScenario();
      requests.length = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

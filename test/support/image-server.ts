/** Serves the fixture photos (and anything else a test puts in `files`) on 127.0.0.1. */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures');
export const fixtureImage = (name: string) => path.join(FIXTURES, 'images', name);

export interface ImageServer {
  url(name: string): string;
  files: Map<string, { body: Buffer; type: string }>;
  requests: string[];
  close(): Promise<void>;
}

export async function startImageServer(): Promise<ImageServer> {
  const files = new Map<string, { body: Buffer; type: string }>();
  const requests: string[] = [];
  const server = http.createServer(async (req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    requests.push(name);
    const extra = files.get(name);
    if (extra) {
      res.writeHead(200, { 'content-type': extra.type }).end(extra.body);
      return;
    }
    try {
      const body = await fs.readFile(fixtureImage(path.basename(name)));
      res.writeHead(200, { 'content-type': name.endsWith('.png') ? 'image/png' : 'image/jpeg' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    files,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

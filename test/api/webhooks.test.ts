/**
 * Webhooks end to end: signed (Standard Webhooks), filtered by event,
 * retried when the receiver fails, refused for internal addresses.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { verify } from '../../lib/webhooks/sign.ts';
import { startImageServer, type ImageServer } from '../support/image-server.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { createTestEngine } from '../support/test-engine.ts';

const SECRET = 'whsec_' + Buffer.from('a test secret of 32 bytes length!').toString('base64');
let svc: TestService;
let images: ImageServer;
let receiver: http.Server;
let receiverUrl: string;
const received: Array<{ headers: Record<string, string | undefined>; body: string; status: number }> = [];
let failures = 0;

beforeAll(async () => {
  receiver = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const status = failures > 0 ? (failures--, 500) : 204;
    received.push({ headers: req.headers as Record<string, string>, body, status });
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  images = await startImageServer();
  svc = await startTestService({ engines: [createTestEngine({ steps: 3, stepMs: 400 })], env: { WEBHOOK_SECRET: SECRET } });
});
afterAll(async () => {
  await svc?.stop();
  await images?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

const swap = (extra: Record<string, unknown>) =>
  fetch(`${svc.url}/face-swap`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg'), ...extra }),
  });

async function until(ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('start, progress and completed events arrive signed, with the job JSON', async () => {
  received.length = 0;
  const res = await swap({ webhook: receiverUrl, webhook_events_filter: ['start', 'progress', 'completed'] });
  const { job_id } = await res.json();
  await until(() => received.some((r) => JSON.parse(r.body).type === 'job.completed'), 30_000);
  const events = received.map((r) => JSON.parse(r.body));
  expect(events.map((e) => e.type)).toContain('job.start');
  expect(events.map((e) => e.type)).toContain('job.progress');
  const completed = events.find((e) => e.type === 'job.completed');
  expect(completed.data).toMatchObject({ job_id, status: 'completed', result_url: expect.any(String) });
  for (const r of received) {
    expect(verify(SECRET, r.headers, r.body)).toBe(true);
    expect(verify(SECRET, r.headers, r.body.replace('job', 'jab'))).toBe(false);
  }
  expect(received.find((r) => JSON.parse(r.body).type === 'job.completed')!.headers['webhook-id']).toBe(`${job_id}.completed`);
  const row = await svc.core.store.get(job_id);
  expect(row?.webhook_sent_at).not.toBeNull();
});

test('by default only the final event is sent, and a failing receiver gets it again', async () => {
  received.length = 0;
  failures = 1;
  const { job_id } = await (await swap({ webhook: receiverUrl })).json();
  await until(() => received.some((r) => r.status === 204), 60_000);
  expect(received.map((r) => r.status)).toEqual([500, 204]);
  expect(received.every((r) => JSON.parse(r.body).type === 'job.completed')).toBe(true);
  expect(received[0]!.headers['webhook-id']).toBe(received[1]!.headers['webhook-id']);
  expect(JSON.parse(received[1]!.body).data.job_id).toBe(job_id);
}, 90_000);

test('a canceled job sends its final event too', async () => {
  received.length = 0;
  const { job_id } = await (await swap({ webhook: receiverUrl })).json();
  await fetch(`${svc.url}/job/${job_id}/cancel`, { method: 'POST' });
  await until(() => received.length > 0, 30_000);
  expect(JSON.parse(received[0]!.body).data).toMatchObject({ job_id, status: 'canceled' });
});

test('webhook URLs into internal networks and unknown events are refused', async () => {
  const internal = await swap({ webhook: 'http://10.0.0.5/hook' });
  expect(internal.status).toBe(400);
  expect((await internal.json()).error.fields).toEqual([{ field: 'webhook', message: expect.stringContaining('10.0.0.5') }]);
  const badEvent = await swap({ webhook: receiverUrl, webhook_events_filter: ['finished'] });
  expect(badEvent.status).toBe(400);
  expect((await badEvent.json()).error.message).toContain('webhook_events_filter');
});

test('without WEBHOOK_SECRET, asking for a webhook is a clear 400', async () => {
  const plain = await startTestService({ engines: [createTestEngine()] });
  try {
    const res = await fetch(`${plain.url}/face-swap`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ base_image_url: images.url('obama.jpg'), face_image_url: images.url('biden.jpg'), webhook: receiverUrl }),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain('WEBHOOK_SECRET');
  } finally {
    await plain.stop();
  }
});

test('maintenance queues again a final webhook that was never queued, once, and only where it was asked for', async () => {
  const { sql } = await import('kysely');
  const db = svc.core.database.db;
  const make = async (events: string[]) => {
    const { job_id } = await (await swap({ webhook: receiverUrl, webhook_events_filter: events })).json();
    for (let i = 0; i < 200 && (await svc.core.store.get(job_id))?.status !== 'completed'; i++) await new Promise((r) => setTimeout(r, 50));
    // As if the process died between the job's end and queueing its webhook.
    await sql`UPDATE jobs SET webhook_queued_at = NULL, webhook_sent_at = NULL, finished_at = now() - interval '5 minutes' WHERE id = ${job_id}`.execute(db);
    return job_id as string;
  };
  const lost = await make(['completed']);
  const startOnly = await make(['start']);
  await until(() => received.filter((r) => JSON.parse(r.body).type === 'job.completed').length >= 1, 10_000).catch(() => {});
  received.length = 0;
  expect(await svc.core.webhooks!.sweep()).toBe(1);
  expect(await svc.core.webhooks!.sweep()).toBe(0);
  await until(() => received.some((r) => JSON.parse(r.body).data.job_id === lost), 30_000);
  expect(received.filter((r) => JSON.parse(r.body).data.job_id === lost)).toHaveLength(1);
  expect(received.some((r) => JSON.parse(r.body).data.job_id === startOnly && JSON.parse(r.body).type === 'job.completed')).toBe(false);
}, 60_000);

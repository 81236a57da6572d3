/**
 * Starts the service for a config: the shared core, the HTTP API and, with
 * WORKER=embedded, one daemon in the same process. Used by src/main.ts and
 * by the tests (which pass their own engines).
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Config } from '../lib/config.ts';
import { checkImageUrl, createImageLoader } from '../lib/intake/index.ts';
import { startMaintenance } from '../lib/jobs/maintenance.ts';
import type { Logger } from '../lib/logger.ts';
import { openCore, webhookPolicy, type Core } from '../lib/runtime.ts';
import { checkWebhookUrl } from '../lib/webhooks/send.ts';
import type { Storage } from '../lib/storage/index.ts';
import { createDaemon, type Daemon } from '../worker/daemon.ts';
import type { Engine } from '../worker/engine.ts';
import { createApp } from './app.ts';
import { EngineDirectory } from './engine-routing.ts';

export interface ServiceOptions {
  config: Config;
  log: Logger;
  version: string;
  /** Engines of the embedded daemon (loaded by the caller: main loads the real ones, tests their own). */
  engines?: Engine[];
  storage?: Storage;
}

export interface Service {
  url: string;
  port: number;
  core: Core;
  daemon: Daemon | undefined;
  stop(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const { config, log, version } = options;
  const core = await openCore(config, log, options.storage ? { storage: options.storage } : {});
  const loader = createImageLoader(config);
  const directory = new EngineDirectory(core.database.db, { defaultSwapEngine: config.DEFAULT_SWAP_ENGINE });

  let daemon: Daemon | undefined;
  if (config.WORKER === 'embedded') {
    daemon = createDaemon(core, config, { engines: options.engines ?? [], log: log.child({ component: 'daemon' }), version });
    await daemon.start();
  }

  const app = createApp({
    config,
    db: core.database.db,
    store: core.store,
    events: core.events,
    storage: core.storage,
    directory,
    checkUrl: (url) => checkImageUrl(url, config.FETCH_ALLOW_HOSTS),
    checkWebhookUrl: core.webhooks ? (url) => void checkWebhookUrl(url, webhookPolicy(config)) : undefined,
    webhooks: core.webhooks,
    decodeUpload: (bytes) => loader.decode(bytes),
    log: log.child({ component: 'api' }),
    version,
  });

  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
  });
  // Blocking endpoints may hold a request for SYNC_TIMEOUT_S; Node's default 300 s request timeout must not cut them.
  if ('requestTimeout' in server) server.requestTimeout = (config.SYNC_TIMEOUT_S + 60) * 1000;
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  log.info({ url, worker: config.WORKER, storage: config.STORAGE }, 'API listening');

  const stopMaintenance = startMaintenance({
    db: core.database.db,
    store: core.store,
    storage: core.storage,
    webhooks: core.webhooks,
    log: log.child({ component: 'maintenance' }),
    retentionDays: config.JOB_RETENTION_DAYS,
  });

  let stopped = false;
  return {
    url,
    port,
    core,
    daemon,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopMaintenance();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
      await daemon?.stop();
      for (const engine of options.engines ?? []) await engine.close?.().catch(() => {});
      await core.close();
    },
  };
}

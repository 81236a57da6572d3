/** What the HTTP API needs, wired by src/main.ts (or by tests). */
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db/database.ts';
import type { InputImage } from '../lib/images/raw.ts';
import type { JobEvents } from '../lib/jobs/events.ts';
import type { JobStore } from '../lib/jobs/store.ts';
import type { Logger } from '../lib/logger.ts';
import type { Storage } from '../lib/storage/index.ts';
import type { WebhookDispatcher } from '../lib/webhooks/dispatcher.ts';
import type { EngineDirectory } from './engine-routing.ts';

export interface ApiDeps {
  config: Config;
  db: Db;
  store: JobStore;
  events: JobEvents;
  storage: Storage;
  directory: EngineDirectory;
  /** Synchronous URL pre-check (scheme, literal forbidden addresses): the normalised URL, or a JobError. */
  checkUrl(url: string): URL;
  /** Webhook URL check; undefined when webhooks are off (no WEBHOOK_SECRET). */
  checkWebhookUrl: ((url: string) => void) | undefined;
  webhooks: WebhookDispatcher | undefined;
  /** Validates and normalises an uploaded image; throws JobError. */
  decodeUpload(bytes: Buffer): Promise<InputImage>;
  log: Logger;
  version: string;
}

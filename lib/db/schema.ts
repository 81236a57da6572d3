/** Kysely table types, matching migrations/. */
import type { ColumnType, Generated, Selectable } from 'kysely';
import type { ImageRef, JobKind } from '../jobs/params.ts';

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'canceled';
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'canceled'];

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T> = ColumnType<T, T | string, T | string>;
type NullableJson<T> = ColumnType<T | null, T | string | null | undefined, T | string | null>;

export const WEBHOOK_EVENTS = ['start', 'progress', 'completed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookSettings {
  url: string;
  events: WebhookEvent[];
}

export interface JobsTable {
  id: string;
  kind: JobKind;
  engine: string;
  queue: string;
  owner: Generated<string>;
  input: Json<Record<string, ImageRef>>;
  params: Json<Record<string, unknown>>;
  status: Generated<JobStatus>;
  progress: Generated<number>;
  stage: string | null;
  result_urls: NullableJson<string[]>;
  result_keys: NullableJson<string[]>;
  info: NullableJson<Record<string, unknown>>;
  error_code: string | null;
  error_message: string | null;
  attempt: Generated<number>;
  daemon_id: string | null;
  webhook: NullableJson<WebhookSettings>;
  webhook_queued_at: NullableTimestamp;
  webhook_sent_at: NullableTimestamp;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  updated_at: Timestamp;
}

export interface EngineReport {
  name: string;
  task: string;
  device: string;
  ready: boolean;
  detail?: string;
}

export interface DaemonsTable {
  id: string;
  host: string;
  pid: number;
  version: string;
  device: string;
  engines: Json<EngineReport[]>;
  status: Generated<'running' | 'stopping' | 'stopped'>;
  current_job: string | null;
  started_at: Timestamp;
  last_seen_at: Timestamp;
}

export interface Database {
  jobs: JobsTable;
  daemons: DaemonsTable;
}

export type JobRow = Selectable<JobsTable>;
export type DaemonRow = Selectable<DaemonsTable>;

/**
 * Webhooks: when the final (`completed`) webhook of a job was queued and when
 * it was delivered, so that maintenance can queue again what was lost, and
 * only that.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs ADD COLUMN webhook_queued_at timestamptz, ADD COLUMN webhook_sent_at timestamptz`.execute(db);
  await sql`CREATE INDEX jobs_webhook_pending ON jobs (finished_at) WHERE webhook IS NOT NULL AND webhook_sent_at IS NULL AND finished_at IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs DROP COLUMN webhook_queued_at, DROP COLUMN webhook_sent_at`.execute(db);
}

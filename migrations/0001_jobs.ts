/**
 * The job record (DESIGN 2) and the daemon registry.
 *
 * `jobs` is the source of truth the API answers from; pg-boss's own tables
 * are only the queue. A trigger NOTIFYs `job_events` on every change of
 * status or progress, so blocking requests and event streams wait on
 * LISTEN instead of polling.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE jobs (
      id uuid PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('face_swap', 'cartoonify', 'face_swap_cartoon')),
      engine text NOT NULL,
      queue text NOT NULL,
      owner text NOT NULL DEFAULT 'anonymous',
      input jsonb NOT NULL,
      params jsonb NOT NULL,
      status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'canceled')),
      progress real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
      stage text,
      result_urls jsonb,
      result_keys jsonb,
      info jsonb,
      error_code text,
      error_message text,
      attempt integer NOT NULL DEFAULT 0,
      daemon_id text,
      webhook jsonb,
      idempotency_key text,
      request_hash text,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL`.execute(db);
  await sql`CREATE INDEX jobs_queued ON jobs (created_at) WHERE status = 'queued'`.execute(db);
  await sql`CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL`.execute(db);

  await sql`
    CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT'
         OR NEW.status IS DISTINCT FROM OLD.status
         OR NEW.progress IS DISTINCT FROM OLD.progress
         OR NEW.stage IS DISTINCT FROM OLD.stage THEN
        PERFORM pg_notify('job_events', json_build_object(
          'id', NEW.id, 'status', NEW.status, 'progress', NEW.progress,
          'stage', NEW.stage, 'attempt', NEW.attempt)::text);
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_notify()`.execute(db);

  await sql`
    CREATE TABLE daemons (
      id text PRIMARY KEY,
      host text NOT NULL,
      pid integer NOT NULL,
      version text NOT NULL,
      device text NOT NULL,
      engines jsonb NOT NULL,
      status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopping', 'stopped')),
      current_job uuid,
      started_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE daemons`.execute(db);
  await sql`DROP TABLE jobs`.execute(db);
  await sql`DROP FUNCTION jobs_notify()`.execute(db);
}

/** The job JSON clients see: the original service's shapes, plus progress fields. */
import type { JobRow } from '../db/schema.ts';

export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

const MESSAGES: Record<string, string> = {
  queued: 'Job is queued',
  processing: 'Job is being processed',
  canceled: 'Job was canceled',
};

/** The columns the job JSON is made of (what `JobStore.getStatus` reads). */
export const STATUS_COLUMNS = [
  'id', 'status', 'progress', 'stage', 'result_urls', 'error_code', 'error_message', 'created_at', 'started_at', 'finished_at',
] as const;
export type JobStatusRow = Pick<JobRow, (typeof STATUS_COLUMNS)[number]>;

/** Run time: started → finished (queue wait excluded). */
export function runTimeMs(row: JobStatusRow): number {
  if (!row.finished_at) return 0;
  const start = row.started_at ?? row.created_at;
  return new Date(row.finished_at).getTime() - new Date(start).getTime();
}

export function presentJob(row: JobStatusRow): Record<string, unknown> {
  const base = { job_id: row.id, status: row.status };
  switch (row.status) {
    case 'completed': {
      const urls = row.result_urls ?? [];
      return {
        ...base,
        result_url: urls[0] ?? null,
        ...(urls.length > 1 ? { result_urls: urls } : {}),
        processing_time: formatSeconds(runTimeMs(row)),
      };
    }
    case 'failed':
      return { ...base, error: { code: row.error_code ?? 'internal_error', message: row.error_message ?? 'The job failed' } };
    case 'canceled':
      return { ...base, message: MESSAGES.canceled };
    default:
      return {
        ...base,
        message: MESSAGES[row.status],
        ...(row.status === 'processing' || row.progress > 0 ? { progress: Number(row.progress.toFixed(4)) } : {}),
        ...(row.stage ? { stage: row.stage } : {}),
      };
  }
}

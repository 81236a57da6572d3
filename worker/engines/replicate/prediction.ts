/**
 * The parts of a Replicate prediction we rely on, validated: anything else is
 * a malformed answer (provider_bad_response), never a crash further on.
 */
import { z } from 'zod';
import { JobError } from '../../../lib/errors.ts';

export const PREDICTION_STATUSES = ['starting', 'processing', 'succeeded', 'failed', 'canceled', 'aborted'] as const;
export type PredictionStatus = (typeof PREDICTION_STATUSES)[number];

const PredictionSchema = z.looseObject({
  id: z.string().min(1),
  status: z.enum(PREDICTION_STATUSES),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  logs: z.string().nullish(),
  metrics: z.looseObject({ predict_time: z.number().optional() }).nullish(),
});
export type Prediction = z.infer<typeof PredictionSchema>;

export function isTerminal(status: PredictionStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'canceled' || status === 'aborted';
}

export function parsePrediction(value: unknown, what: string): Prediction {
  const parsed = PredictionSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const detail = issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'unexpected shape';
  throw new JobError('provider_bad_response', `Replicate answered ${what} with a malformed prediction (${detail})`, {
    retryable: true,
  });
}

/** Replicate's error text of a failed prediction, as one readable line. */
export function predictionErrorText(prediction: Prediction): string {
  const error = prediction.error;
  if (typeof error === 'string' && error.trim()) return error.trim();
  if (error !== undefined && error !== null) return JSON.stringify(error);
  return 'no error text given';
}

export interface ModelRef {
  owner: string;
  name: string;
  version?: string;
}

/** `owner/name` or `owner/name:version` (lib/config.ts already validated the shape). */
export function parseModelRef(ref: string): ModelRef {
  const match = /^([\w.-]+)\/([\w.-]+)(?::([0-9a-f]{64}))?$/.exec(ref);
  if (!match) throw new Error(`Not a Replicate model reference: ${JSON.stringify(ref)}`);
  const [, owner, name, version] = match as unknown as [string, string, string, string | undefined];
  return version ? { owner, name, version } : { owner, name };
}

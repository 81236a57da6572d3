/**
 * The service's configuration, read once from the environment and validated
 * with zod. `loadConfig` never reads files or the network; `main` files call
 * it and hand the result to everything else. Every variable is documented in
 * the README's Configuration section.
 */
import path from 'node:path';
import { z } from 'zod';
import { SWAP_ENGINES } from './jobs/params.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

const url = z.url({ protocol: /^https?$/ });

/** A model input field name, as Replicate's schemas spell them. */
const inputField = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an input field name');

/** A JSON object given as a string. */
const jsonObject = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string(), z.unknown()));

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  PUBLIC_BASE_URL: url.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  DATA_DIR: z.string().default('data'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),

  STORAGE: z.enum(['local', 'supabase']).default('local'),
  SUPABASE_URL: url.optional(),
  SUPABASE_SERVICE_KEY: z.string().min(1).optional(),
  SUPABASE_BUCKET: z.string().min(1).optional(),
  /** 0: the bucket is public, hand out public URLs; > 0: signed URLs valid this many seconds. */
  SUPABASE_SIGNED_URL_EXPIRES_S: z.coerce.number().int().min(0).default(0),

  MODELS_DIR: z.string().default('models'),
  ONNX_PROVIDER: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  ONNX_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  /** Per-role model file overrides, "role=file,role=file" (files relative to MODELS_DIR); see docs/face-analysis.md. */
  MODEL_FILES: list.default([]),

  FETCH_ALLOW_HOSTS: list.default([]),
  FETCH_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(1).default(5_000),
  FETCH_TIMEOUT_MS: z.coerce.number().int().min(1).default(20_000),
  FETCH_MAX_BYTES: z.coerce.number().int().min(1).default(10 * 1024 * 1024),
  FETCH_MAX_REDIRECTS: z.coerce.number().int().min(0).max(20).default(5),
  IMAGE_MAX_PIXELS: z.coerce.number().int().min(1).default(40_000_000),

  WORKER: z.enum(['embedded', 'off']).optional(),
  DEFAULT_SWAP_ENGINE: z.enum(SWAP_ENGINES).default('auto'),
  /** Engines this daemon loads; empty: every engine whose models or credentials are present. */
  ENGINES: list.default([]),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** A running job whose daemon stops heart-beating is handed to another daemon after this long. */
  JOB_LEASE_S: z.coerce.number().int().min(10).default(60),
  JOB_TIMEOUT_S: z.coerce.number().int().min(10).default(900),
  JOB_RETENTION_DAYS: z.coerce.number().int().min(1).default(7),

  SYNC_TIMEOUT_S: z.coerce.number().min(0).max(3600).default(300),
  MAX_QUEUE_DEPTH: z.coerce.number().int().min(1).default(1000),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  WEBHOOK_SECRET: z.string().min(16).optional(),
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),

  REPLICATE_API_TOKEN: z.string().min(1).optional(),
  REPLICATE_BASE_URL: url.default('https://api.replicate.com/v1'),
  REPLICATE_CARTOONIFY_MODEL: z
    .string()
    .regex(/^[\w.-]+\/[\w.-]+(:[0-9a-f]{64})?$/, 'must be owner/name or owner/name:version')
    // Pinned: catacolabs/cartoonify is a community model, which Replicate runs only by version.
    .default('catacolabs/cartoonify:f109015d60170dfb20460f17da8cb863155823c85ece1115e1e9e4ec7ef51d3b'),
  /** The model's input field that receives the image (catacolabs/cartoonify: `image`). */
  REPLICATE_CARTOONIFY_INPUT_FIELD: inputField.default('image'),
  /** Extra fixed inputs for the cartoonify model, a JSON object (e.g. a prompt for an instruction-following model). */
  REPLICATE_CARTOONIFY_EXTRA_INPUT: jsonObject.default({}),
  REPLICATE_FACESWAP_MODEL: z
    .string()
    .regex(/^[\w.-]+\/[\w.-]+(:[0-9a-f]{64})?$/, 'must be owner/name or owner/name:version')
    .optional(),
  /** The face-swap model's input fields for the base photo and for the face (identity) photo. */
  REPLICATE_FACESWAP_BASE_FIELD: inputField.default('input_image'),
  REPLICATE_FACESWAP_FACE_FIELD: inputField.default('swap_image'),
  REPLICATE_FACESWAP_EXTRA_INPUT: jsonObject.default({}),
  REPLICATE_TIMEOUT_S: z.coerce.number().min(1).default(120),

  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: url.default('https://api.openai.com/v1'),
  OPENAI_VISION_MODEL: z.string().min(1).default('gpt-4o-mini'),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config extends Omit<Env, 'WORKER' | 'PUBLIC_BASE_URL'> {
  WORKER: 'embedded' | 'off';
  PUBLIC_BASE_URL: string;
  /** True when no DATABASE_URL is set and the service runs its own Postgres under DATA_DIR. */
  embeddedDatabase: boolean;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Validate the environment; throws ConfigError naming every bad variable at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Config {
  // Empty strings mean "unset", as they do in most shells and .env files.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.join('.');
      problems.push(`${name}: ${issue.message}${name in cleaned ? ` (got ${JSON.stringify(cleaned[name])})` : ''}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  if (e.STORAGE === 'supabase') {
    for (const name of ['SUPABASE_URL', 'SUPABASE_SERVICE_KEY', 'SUPABASE_BUCKET'] as const) {
      if (!e[name]) problems.push(`${name}: required when STORAGE=supabase`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const embeddedDatabase = e.DATABASE_URL === undefined;
  return {
    ...e,
    DATA_DIR: path.resolve(cwd, e.DATA_DIR),
    MODELS_DIR: path.resolve(cwd, e.MODELS_DIR),
    WORKER: e.WORKER ?? (embeddedDatabase ? 'embedded' : 'off'),
    PUBLIC_BASE_URL: (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    embeddedDatabase,
  };
}

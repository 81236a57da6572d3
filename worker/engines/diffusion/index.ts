/**
 * The diffusion face-swap engine (issue 5): SDXL inpainting with IP-Adapter
 * FaceID Plus v2 on onnxruntime-node. Loads every model of DESIGN 6 by role
 * from MODELS_DIR once, checks each against its contract, and never throws for
 * a missing or wrong file: status() then says which file and which input or
 * output is wrong.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../../lib/config.ts';
import type { InputImage } from '../../../lib/images/raw.ts';
import type { FaceSwapParams } from '../../../lib/jobs/params.ts';
import type { Engine, EngineContext, EngineOutput, EngineStatus } from '../../engine.ts';
import { createScrfdDetector } from '../../face/scrfd.ts';
import { createRecognizer } from '../../face/recognize.ts';
import { createBisenetParser } from '../../face/parse.ts';
import { createSessionFactory, type SessionFactory } from '../../onnx/session.ts';
import type { InferenceSession } from 'onnxruntime-node';
import { DIFFUSION_CONTRACTS, DIFFUSION_ROLES, type DiffusionRole } from '../../diffusion/models.ts';
import { loadModelManifest, missingModels, resolveModel } from '../../models/manifest.ts';

const ALL_ROLES = [...DIFFUSION_ROLES, 'tokenizer_vocab', 'tokenizer_merges'] as const;
import { DEFAULT_PROMPT, swapFaceDiffusion, type DiffusionModels } from '../../diffusion/pipeline.ts';
import { createModelClock, timedSession, type ModelClock } from '../../diffusion/session.ts';
import { loadClipTokenizer } from '../../diffusion/tokenizer.ts';
import { warmUp } from '../../diffusion/warmup.ts';

export interface PromptWriter {
  promptFor(face: InputImage, signal?: AbortSignal): Promise<string>;
}

export interface DiffusionEngineDeps {
  config: Config;
  log: Logger;
  promptWriter?: PromptWriter;
  /** Generation side (area ≈ resolution²); default 1024 (SDXL native). Tests use smaller values. */
  resolution?: number;
  /** Run one small pass through every model at start (default: on CUDA only). */
  warmup?: boolean;
  /** Share the daemon's session factory; default: one from ONNX_PROVIDER / ONNX_THREADS. */
  sessions?: SessionFactory;
}

export interface DiffusionEngine extends Engine<FaceSwapParams> {
  /** Time spent inside model calls (for benchmarks: the rest is the engine's own overhead). */
  readonly clock: ModelClock;
}

function notReady(detail: string, device: string): DiffusionEngine {
  return {
    name: 'diffusion',
    task: 'face_swap',
    device,
    clock: createModelClock(),
    status: () => ({ ready: false, detail }),
    run: async () => {
      throw new Error(`diffusion engine is not ready: ${detail}`);
    },
    close: async () => undefined,
  };
}

export async function createDiffusionEngine(deps: DiffusionEngineDeps): Promise<DiffusionEngine> {
  const { config, log } = deps;
  const dir = config.MODELS_DIR;
  const factory =
    deps.sessions ?? createSessionFactory({ provider: config.ONNX_PROVIDER, threads: config.ONNX_THREADS, log });

  // Files by role from the model manifest (MODEL_FILES overrides); missing files first, all named at once.
  let paths: Record<DiffusionRole | 'tokenizer_vocab' | 'tokenizer_merges', string>;
  try {
    const manifest = loadModelManifest(dir, { modelFiles: config.MODEL_FILES });
    const missing = missingModels(manifest, ALL_ROLES);
    if (missing.length > 0) {
      const detail = `missing model files: ${missing.join(', ')} (models/README.md says how to produce them; npm run models:standin -- <dir> writes stand-ins)`;
      log.warn({ engine: 'diffusion', missing }, 'diffusion engine unavailable: model files missing');
      return notReady(detail, factory.device);
    }
    paths = Object.fromEntries(ALL_ROLES.map((r) => [r, resolveModel(manifest, r).path])) as typeof paths;
  } catch (error) {
    return notReady((error as Error).message, factory.device);
  }
  if (path.dirname(paths.tokenizer_vocab) !== path.dirname(paths.tokenizer_merges)) {
    return notReady(`tokenizer_vocab and tokenizer_merges must be in one folder (${paths.tokenizer_vocab}, ${paths.tokenizer_merges})`, factory.device);
  }
  const tokDir = path.dirname(paths.tokenizer_vocab);

  const sessions: Partial<Record<DiffusionRole, InferenceSession>> = {};
  const problems: string[] = [];
  for (const role of DIFFUSION_ROLES) {
    try {
      sessions[role] = await factory.load(paths[role], DIFFUSION_CONTRACTS[role]);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  let tokenizer;
  try {
    tokenizer = await loadClipTokenizer(tokDir);
  } catch (error) {
    problems.push(`tokenizer ${tokDir}: ${(error as Error).message}`);
  }
  const releaseAll = async () => {
    for (const s of Object.values(sessions)) await s?.release().catch(() => undefined);
  };
  if (problems.length > 0 || !tokenizer) {
    await releaseAll();
    const detail = problems.join('; ');
    log.warn({ engine: 'diffusion', problems }, 'diffusion engine unavailable: model files do not fit their contracts');
    return notReady(detail, factory.device);
  }

  const clock = createModelClock();
  const s = (r: DiffusionRole) => timedSession(sessions[r]!, clock);
  const models: DiffusionModels = {
    detector: createScrfdDetector(s('detector')),
    recognizer: createRecognizer(s('recognizer')),
    parser: createBisenetParser(s('parser')),
    clipVision: s('clip_vision'),
    projection: s('faceid_projection'),
    tokenizer,
    encoderL: s('text_encoder_l'),
    encoderG: s('text_encoder_g'),
    vaeEncoder: s('vae_encoder'),
    vaeDecoder: s('vae_decoder'),
    unet: s('unet'),
  };
  const resolution = deps.resolution ?? 1024;
  const device = factory.device;

  if (deps.warmup ?? device === 'cuda') {
    const t = performance.now();
    try {
      await warmUp(models, resolution);
      log.info({ engine: 'diffusion', ms: Math.round(performance.now() - t) }, 'diffusion engine warmed up');
    } catch (error) {
      log.warn({ engine: 'diffusion', err: (error as Error).message }, 'diffusion warm-up failed');
    }
    clock.reset();
  }

  let closed = false;
  const status = (): EngineStatus =>
    closed ? { ready: false, detail: 'closed' } : { ready: true, detail: `${DIFFUSION_ROLES.length} models and the tokenizer loaded from ${dir} on ${device}` };

  async function choosePrompt(inputs: Record<string, InputImage>, params: FaceSwapParams, ctx: EngineContext): Promise<string> {
    const given = params.prompt?.trim();
    if (given && !params.auto_prompt) return given;
    if (deps.promptWriter && inputs.face) {
      try {
        ctx.progress(0, 'prompt_writer');
        const p = (await deps.promptWriter.promptFor(inputs.face, ctx.signal)).trim();
        if (p) return given ? `${p}, ${given}` : p;
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        ctx.log.warn({ err: (error as Error).message }, 'prompt writer failed; using the default prompt');
      }
    }
    return given || DEFAULT_PROMPT;
  }

  return {
    name: 'diffusion',
    task: 'face_swap',
    device,
    clock,
    status,
    async run(inputs, params, ctx): Promise<EngineOutput> {
      const base = inputs.base;
      const face = inputs.face;
      if (!base || !face) throw new Error('the diffusion engine needs the inputs "base" and "face"');
      const prompt = await choosePrompt(inputs, params, ctx);
      const result = await swapFaceDiffusion(models, base.raw, face.raw, params, {
        signal: ctx.signal,
        progress: (f, stage) => ctx.progress(f, stage),
        prompt,
        resolution,
        clock,
      });
      return { images: result.images.map((image) => ({ kind: 'raw', image })), info: { engine: 'diffusion', device, ...result.info } };
    },
    async close() {
      closed = true;
      await releaseAll();
    },
  };
}

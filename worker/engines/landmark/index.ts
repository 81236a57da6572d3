/**
 * The landmark engine ("landmark", task face_swap): a CPU face swap from dense
 * landmarks (DESIGN 5.9). Models by role from the manifest: a detector
 * (YuNet "detector_yunet", preferred: permissive and fast; else SCRFD
 * "detector") and the MediaPipe face mesh ("face_mesh"). Missing or
 * mismatched models never throw here: status() says which file and why.
 */
import type { Logger } from 'pino';
import type { Config } from '../../../lib/config.ts';
import { JobError } from '../../../lib/errors.ts';
import type { FaceSwapParams } from '../../../lib/jobs/params.ts';
import type { Engine, EngineContext, EngineInputs, EngineOutput, EngineStatus } from '../../engine.ts';
import { FACE_MESH_CONTRACT, SCRFD_CONTRACT, YUNET_CONTRACT } from '../../face/contracts.ts';
import { createFaceMesh } from '../../face/mesh.ts';
import { createScrfdDetector } from '../../face/scrfd.ts';
import type { FaceDetector } from '../../face/types.ts';
import { createYunetDetector } from '../../face/yunet.ts';
import { loadModelManifest, missingModels, resolveModel } from '../../models/manifest.ts';
import { createSessionFactory, type SessionFactory } from '../../onnx/session.ts';
import { createLandmarkSwapper, type LandmarkSwapper } from './swap.ts';

export type LandmarkDetectorChoice = 'auto' | 'yunet' | 'scrfd';

export interface LandmarkEngineDeps {
  config: Config;
  log: Logger;
  /** The daemon's shared session factory; created from config when absent. */
  sessions?: SessionFactory;
  /** Which detector: auto prefers YuNet when its file is present, else SCRFD. */
  detector?: LandmarkDetectorChoice;
}

export async function createLandmarkEngine(deps: LandmarkEngineDeps): Promise<Engine<FaceSwapParams>> {
  const { config } = deps;
  const log = deps.log.child({ engine: 'landmark' });
  let status: EngineStatus = { ready: false, detail: 'not loaded' };
  let swapper: LandmarkSwapper | undefined;
  let detectorName = '';
  const sessions = deps.sessions ?? createSessionFactory({ provider: config.ONNX_PROVIDER, threads: config.ONNX_THREADS, log });
  const released: Array<() => Promise<void>> = [];

  try {
    const manifest = loadModelManifest(config.MODELS_DIR, { modelFiles: config.MODEL_FILES });
    const choice = deps.detector ?? 'auto';
    const yunetMissing = missingModels(manifest, ['detector_yunet']).length > 0;
    const detectorRole = choice === 'scrfd' || (choice === 'auto' && yunetMissing) ? 'detector' : 'detector_yunet';
    const missing = missingModels(manifest, [detectorRole, 'face_mesh']);
    if (missing.length > 0) {
      status = { ready: false, detail: `missing model files: ${missing.join(', ')} (run npm run models, or set MODELS_DIR / MODEL_FILES)` };
      log.warn({ missing }, 'landmark engine not ready: missing model files');
    } else {
      const detPath = resolveModel(manifest, detectorRole).path;
      const meshPath = resolveModel(manifest, 'face_mesh').path;
      const detSession = await sessions.load(detPath, detectorRole === 'detector' ? SCRFD_CONTRACT : YUNET_CONTRACT);
      released.push(() => detSession.release());
      const meshSession = await sessions.load(meshPath, FACE_MESH_CONTRACT);
      released.push(() => meshSession.release());
      const detector: FaceDetector = detectorRole === 'detector' ? createScrfdDetector(detSession) : createYunetDetector(detSession);
      detectorName = detectorRole === 'detector' ? 'scrfd' : 'yunet';
      swapper = createLandmarkSwapper({ detector, mesh: createFaceMesh(meshSession) });
      status = { ready: true, detail: `detector ${detectorName} (${detPath}), face mesh (${meshPath}) on ${sessions.device}` };
      log.info({ detector: detPath, mesh: meshPath, device: sessions.device }, 'landmark engine ready');
    }
  } catch (error) {
    status = { ready: false, detail: (error as Error).message };
    log.error({ err: (error as Error).message }, 'landmark engine failed to load');
  }

  return {
    name: 'landmark',
    task: 'face_swap',
    device: sessions.device,
    status: () => status,
    async run(inputs: EngineInputs, params: FaceSwapParams, ctx: EngineContext): Promise<EngineOutput> {
      if (!swapper) throw new JobError('engine_unavailable', `The landmark engine is not ready: ${status.detail}`, { retryable: false });
      const base = inputs.base, face = inputs.face;
      if (!base || !face) throw new JobError('invalid_input', 'A face swap needs a base image and a face image');
      const started = performance.now();
      const result = await swapper.swap(
        base.raw,
        face.raw,
        { face_index: params.face_index, source_face_index: params.source_face_index, swap_all: params.swap_all },
        {
          signal: ctx.signal,
          progress: (fraction, stage) => ctx.progress(fraction, stage),
        },
      );
      return {
        images: [{ kind: 'raw', image: result.image }],
        info: {
          engine: 'landmark',
          detector: detectorName,
          faces_in_base: result.baseFaces.length,
          faces_in_source: result.sourceFaces.length,
          faces_swapped: result.swapped.length,
          timings_ms: Object.fromEntries(
            Object.entries({ ...result.timings, total: performance.now() - started }).map(([k, v]) => [k, Math.round(v)]),
          ),
        },
      };
    },
    async close() {
      for (const r of released.splice(0)) await r().catch(() => undefined);
    },
  };
}

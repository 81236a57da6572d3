/**
 * The daemon's one ONNX session factory: picks the execution provider (CUDA
 * when its libraries are present, else CPU with a log line), sets thread
 * counts, and checks every model against its role's contract when loaded.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { checkContract, type ModelContract } from './contract.ts';

export type OnnxProvider = 'auto' | 'cpu' | 'cuda';
export type OnnxDevice = 'cpu' | 'cuda';

export interface SessionFactoryOptions {
  provider: OnnxProvider;
  /** Intra-op threads per session; 0 picks min(available cores, 8). */
  threads: number;
  log: Pick<Logger, 'info' | 'warn'>;
}

export interface SessionFactory {
  /** Load a model file; when a contract is given, a mismatch throws ModelContractError naming the file. */
  load(file: string, contract?: ModelContract): Promise<ort.InferenceSession>;
  /** Where sessions run; "cpu" after a fallback. */
  readonly device: OnnxDevice;
  readonly threads: number;
}

/** Whether onnxruntime-node can use CUDA here: the binding lists it and its provider library is installed next to the binding. */
export function cudaAvailable(): { ok: boolean; reason?: string } {
  const listed = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!listed) return { ok: false, reason: `onnxruntime-node has no CUDA backend on ${process.platform}/${process.arch}` };
  try {
    const require = createRequire(import.meta.url);
    const pkgDir = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const binDir = path.join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
    const lib = path.join(binDir, 'libonnxruntime_providers_cuda.so');
    if (!existsSync(lib)) {
      return { ok: false, reason: `the CUDA provider library is not installed (${path.basename(lib)} missing next to the onnxruntime-node binding)` };
    }
  } catch (error) {
    return { ok: false, reason: `cannot locate onnxruntime-node: ${(error as Error).message}` };
  }
  return { ok: true };
}

export function createSessionFactory(opts: SessionFactoryOptions): SessionFactory {
  const threads = opts.threads > 0 ? opts.threads : Math.max(1, Math.min(os.availableParallelism(), 8));
  let device: OnnxDevice = 'cpu';
  if (opts.provider !== 'cpu') {
    const cuda = cudaAvailable();
    if (cuda.ok) device = 'cuda';
    else if (opts.provider === 'cuda') opts.log.warn({ reason: cuda.reason }, `ONNX_PROVIDER=cuda but CUDA is unavailable (${cuda.reason}); using CPU`);
    else opts.log.info({ reason: cuda.reason }, `ONNX: CUDA unavailable (${cuda.reason}); using CPU`);
  }

  const sessionOptions = (dev: OnnxDevice): ort.InferenceSession.SessionOptions => ({
    executionProviders: dev === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });

  const factory: SessionFactory = {
    get device() {
      return device;
    },
    threads,
    async load(file: string, contract?: ModelContract): Promise<ort.InferenceSession> {
      if (!existsSync(file)) throw new Error(`Model file not found: ${file}${contract ? ` (role ${contract.role})` : ''}`);
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(file, sessionOptions(device));
      } catch (error) {
        if (device !== 'cuda') throw new Error(`Cannot load model ${file}: ${(error as Error).message}`, { cause: error });
        opts.log.warn({ file, err: (error as Error).message }, 'ONNX: CUDA session failed; falling back to CPU');
        device = 'cpu';
        session = await ort.InferenceSession.create(file, sessionOptions('cpu'));
      }
      if (contract) {
        try {
          checkContract(session, contract, file);
        } catch (error) {
          await session.release().catch(() => undefined);
          throw error;
        }
      }
      return session;
    },
  };
  return factory;
}

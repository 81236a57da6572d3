import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FACE_MESH_CONTRACT, PAN_SEG_CONTRACT, RECOGNIZER_CONTRACT, SCRFD_CONTRACT, YUNET_CONTRACT, ARCFACE_512_CONTRACT, BISENET_CONTRACT } from '../../worker/face/contracts.ts';
import { loadModelManifest, missingModels, resolveModel } from '../../worker/models/manifest.ts';
import { ModelContractError, type ModelContract } from '../../worker/onnx/contract.ts';
import { createSessionFactory, cudaAvailable } from '../../worker/onnx/session.ts';
import { FIXTURE_MODEL, FIXTURE_MODEL_FILES, MODELS, quietLog, testSessions } from './fixtures.ts';

describe('session factory', () => {
  it('loads every fixture model against its role contract', async () => {
    const s = testSessions();
    const pairs: Array<[string, ModelContract]> = [
      [FIXTURE_MODEL.scrfd25, SCRFD_CONTRACT],
      [FIXTURE_MODEL.scrfd500, SCRFD_CONTRACT],
      [FIXTURE_MODEL.yunet, YUNET_CONTRACT],
      [FIXTURE_MODEL.mesh, FACE_MESH_CONTRACT],
      [FIXTURE_MODEL.recognizer, RECOGNIZER_CONTRACT],
      [FIXTURE_MODEL.pan, PAN_SEG_CONTRACT],
    ];
    for (const [file, contract] of pairs) {
      const session = await s.load(file, contract);
      expect(session.inputNames.length).toBe(contract.inputs.length);
      await session.release();
    }
  });

  it('rejects a model that does not fit the contract, naming the file and the mismatch', async () => {
    const s = testSessions();
    await expect(s.load(FIXTURE_MODEL.yunet, SCRFD_CONTRACT)).rejects.toThrow(ModelContractError);
    await expect(s.load(FIXTURE_MODEL.yunet, SCRFD_CONTRACT)).rejects.toThrow(/yunet_n_dynamic\.onnx.*input "input\.1" is missing/);
    // The 128-d recognizer is not the 512-d ArcFace IP-Adapter needs.
    await expect(s.load(FIXTURE_MODEL.recognizer, ARCFACE_512_CONTRACT)).rejects.toThrow(
      /mobilefacenet_foamliu\.onnx.*output #0 \("output0"\) has shape \[1,128\], expected \[N,512\]/,
    );
    // The PAN stand-in has 3 output channels, not BiSeNet's 19, and another input name.
    await expect(s.load(FIXTURE_MODEL.pan, BISENET_CONTRACT)).rejects.toThrow(/pan_skin_clothes_hair_seg\.onnx.*input "input" is missing.*\[1,19,512,512\]/);
    await expect(s.load(FIXTURE_MODEL.mesh, FACE_MESH_CONTRACT)).resolves.toBeDefined();
  });

  it('fails clearly for a missing file', async () => {
    await expect(testSessions().load(path.join(MODELS, 'nope.onnx'), SCRFD_CONTRACT)).rejects.toThrow(/not found: .*nope\.onnx \(role detector/);
  });

  it('uses CUDA when it is available, and otherwise falls back to CPU with a log line', async () => {
    const lines: string[] = [];
    const log = { info: (_o: unknown, m?: string) => void lines.push(String(m)), warn: (_o: unknown, m?: string) => void lines.push(String(m)) };
    const s = createSessionFactory({ provider: 'cuda', threads: 0, log });
    const cuda = cudaAvailable();
    if (cuda.ok) {
      expect(s.device).toBe('cuda');
      expect(lines.join('\n')).not.toMatch(/CUDA is unavailable/);
    } else {
      expect(s.device).toBe('cpu');
      expect(lines.join('\n')).toMatch(/CUDA is unavailable.*using CPU/);
      expect(lines.join('\n')).toContain(cuda.reason!);
    }
    expect(s.threads).toBeGreaterThan(0);
    const session = await s.load(FIXTURE_MODEL.yunet, YUNET_CONTRACT);
    await session.release();
    const quiet = createSessionFactory({ provider: 'cpu', threads: 3, log: quietLog });
    expect(quiet.device).toBe('cpu');
    expect(quiet.threads).toBe(3);
  });
});

describe('model manifest', () => {
  it('lists role, file, source, licence and engines for every entry of models/manifest.json', () => {
    const m = loadModelManifest(MODELS);
    for (const role of ['detector', 'detector_yunet', 'face_mesh', 'recognizer', 'parser']) {
      const e = m.byRole.get(role);
      expect(e, role).toBeDefined();
      expect(e!.licence).toBeTruthy();
      expect(e!.engines.length).toBeGreaterThan(0);
    }
    // The permissive landmark-engine models are pinned by hash to the same bytes as the fixtures.
    expect(m.byRole.get('detector_yunet')!.sha256).toBe('104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12');
  });

  it('maps roles onto other file names with MODEL_FILES and resolves them in MODELS_DIR', () => {
    const m = loadModelManifest(MODELS, { modelFiles: FIXTURE_MODEL_FILES });
    const det = resolveModel(m, 'detector');
    expect(det.path).toBe(FIXTURE_MODEL.scrfd25);
    expect(det.exists).toBe(true);
    expect(det.entry.sha256).toBeNull(); // a different file than the manifest's: its hash no longer applies
    expect(resolveModel(m, 'detector_yunet').entry.sha256).toMatch(/^104ee2/); // same file name: kept
    expect(missingModels(m, ['detector', 'face_mesh', 'recognizer'])).toEqual([]);
    expect(() => resolveModel(m, 'unknown_role')).toThrow(/unknown_role/);
    expect(() => loadModelManifest(MODELS, { modelFiles: ['oops'] })).toThrow(/role=file/);
  });

  it('reports missing files by role and path', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'models-'));
    const m = loadModelManifest(dir);
    expect(missingModels(m, ['face_mesh'])).toEqual([`face_mesh (${path.join(dir, 'mediapipe_face_landmark_468.onnx')})`]);
  });

  it('merges a manifest.json inside MODELS_DIR over the repository one', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'models-'));
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ role: 'face_mesh', file: 'mesh.onnx', engines: ['landmark'] }, { role: 'extra', file: 'x.onnx' }]));
    const m = loadModelManifest(dir);
    expect(m.byRole.get('face_mesh')!.file).toBe('mesh.onnx');
    expect(m.byRole.get('extra')!.engines).toEqual([]);
    expect(m.byRole.get('detector')!.file).toBe('det_10g.onnx');
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ role: 'x' }]));
    expect(() => loadModelManifest(dir)).toThrow(/Invalid model manifest .*manifest\.json: 0\.file/);
  });
});

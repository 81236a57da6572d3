/**
 * npm run models [-- --engine landmark] [-- role ...]
 *
 * Downloads the model files that models/manifest.json lists into MODELS_DIR
 * (default ./models), checking each file's sha256 where the manifest pins one.
 * Files already present with the right hash are skipped. Needs internet; the
 * weights are never committed (*.onnx is git-ignored). Entries without a URL
 * (models you export yourself) are listed with what to do.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadModelManifest, type ModelEntry } from '../worker/models/manifest.ts';

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

async function download(entry: ModelEntry, dest: string): Promise<void> {
  const tmp = `${dest}.part`;
  const res = await fetch(entry.url!, { redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`${entry.url}: HTTP ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(tmp));
  const got = await sha256Of(tmp);
  if (entry.sha256 && got !== entry.sha256) {
    rmSync(tmp, { force: true });
    throw new Error(`${entry.file}: sha256 ${got} does not match the manifest's ${entry.sha256}`);
  }
  renameSync(tmp, dest);
  if (!entry.sha256) console.log(`  ${entry.file}: no pinned sha256 in the manifest; downloaded file has ${got} (pin it to detect changes)`);
}

async function main(argv: string[]): Promise<number> {
  const modelsDir = path.resolve(process.env.MODELS_DIR ?? 'models');
  const engineAt = argv.indexOf('--engine');
  const engine = engineAt >= 0 ? argv[engineAt + 1] : undefined;
  const roles = argv.filter((a, i) => !a.startsWith('--') && !(engineAt >= 0 && i === engineAt + 1));
  const manifest = loadModelManifest(modelsDir);
  const entries = manifest.entries.filter((e) => (roles.length === 0 || roles.includes(e.role)) && (!engine || e.engines.includes(engine)));
  mkdirSync(modelsDir, { recursive: true });
  let failed = 0;
  for (const e of entries) {
    const dest = path.join(modelsDir, e.file);
    console.log(`${e.role}: ${e.file} (${e.licence ?? 'licence not stated'})`);
    if (existsSync(dest) && (!e.sha256 || (await sha256Of(dest)) === e.sha256)) {
      console.log('  present');
      continue;
    }
    if (!e.url) {
      console.log('  no download URL: export or copy this file into MODELS_DIR yourself (see docs/face-analysis.md)');
      continue;
    }
    try {
      console.log(`  downloading ${e.url}`);
      await download(e, dest);
      console.log('  ok');
    } catch (error) {
      failed++;
      console.error(`  failed: ${(error as Error).message}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));

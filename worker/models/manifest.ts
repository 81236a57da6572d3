/**
 * The model manifest: which file plays which role, where it comes from, its
 * sha256 and licence. The repository's models/manifest.json is the default; a
 * manifest.json inside MODELS_DIR (when MODELS_DIR is elsewhere) adds or
 * replaces entries by role; MODEL_FILES ("role=file,...") overrides file names
 * per role (tests map roles onto the fixture files this way).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const ModelEntrySchema = z.object({
  role: z.string().min(1),
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().optional(),
  url: z.url().nullable().optional(),
  licence: z.string().optional(),
  engines: z.array(z.string()).default([]),
});
export type ModelEntry = z.infer<typeof ModelEntrySchema>;

export const ModelManifestSchema = z.array(ModelEntrySchema);

/** The repository's manifest file. */
export const DEFAULT_MANIFEST_PATH = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));

export interface ModelManifest {
  modelsDir: string;
  entries: ModelEntry[];
  /** Role -> entry (file name already overridden by MODEL_FILES). */
  byRole: Map<string, ModelEntry>;
}

export interface ResolvedModel {
  role: string;
  /** Absolute path in MODELS_DIR. */
  path: string;
  exists: boolean;
  entry: ModelEntry;
}

function readManifest(file: string): ModelEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read model manifest ${file}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = ModelManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`Invalid model manifest ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** Parse MODEL_FILES entries ("role=file"). */
export function parseModelFiles(list: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) throw new Error(`MODEL_FILES entry "${item}" is not role=file`);
    map.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return map;
}

export function loadModelManifest(
  modelsDir: string,
  opts: { manifestPath?: string; modelFiles?: readonly string[] } = {},
): ModelManifest {
  const manifestPath = path.resolve(opts.manifestPath ?? DEFAULT_MANIFEST_PATH);
  const byRole = new Map<string, ModelEntry>();
  for (const e of readManifest(manifestPath)) byRole.set(e.role, e);
  const local = path.resolve(modelsDir, 'manifest.json');
  if (local !== manifestPath && existsSync(local)) for (const e of readManifest(local)) byRole.set(e.role, e);
  for (const [role, file] of parseModelFiles(opts.modelFiles ?? [])) {
    const prev = byRole.get(role);
    // A file other than the manifest's: its pinned hash no longer applies.
    byRole.set(role, prev ? { ...prev, file, sha256: prev.file === file ? prev.sha256 : null } : { role, file, engines: [] });
  }
  return { modelsDir: path.resolve(modelsDir), entries: [...byRole.values()], byRole };
}

/** Where the model for `role` is, and whether it is there. Unknown roles throw. */
export function resolveModel(manifest: ModelManifest, role: string): ResolvedModel {
  const entry = manifest.byRole.get(role);
  if (!entry) throw new Error(`No model for role "${role}" in the model manifest (add it to models/manifest.json or MODEL_FILES)`);
  const file = path.resolve(manifest.modelsDir, entry.file);
  return { role, path: file, exists: existsSync(file), entry };
}

/** The roles among `roles` whose files are missing, as "role (path)" strings. */
export function missingModels(manifest: ModelManifest, roles: readonly string[]): string[] {
  return roles.flatMap((role) => {
    try {
      const m = resolveModel(manifest, role);
      return m.exists ? [] : [`${role} (${m.path})`];
    } catch {
      return [`${role} (not in the manifest)`];
    }
  });
}

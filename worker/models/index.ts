export { DEFAULT_MANIFEST_PATH, loadModelManifest, missingModels, ModelEntrySchema, ModelManifestSchema, parseModelFiles, resolveModel } from './manifest.ts';
export type { ModelEntry, ModelManifest, ResolvedModel } from './manifest.ts';

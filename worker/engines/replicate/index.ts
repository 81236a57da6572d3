export { createReplicateCartoonifyEngine, type ReplicateEngineDeps } from './cartoonify.ts';
export { createReplicateFaceSwapEngine } from './face-swap.ts';
export { DEFAULT_TUNING, type ReplicateTuning } from './run-model.ts';

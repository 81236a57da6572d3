/**
 * Classifier-free guidance (DESIGN 5.6): the UNet runs once on a batch of two,
 * [uncond, cond]; ε = ε_u + g·(ε_c − ε_u). With g ≤ 1 guidance is a no-op
 * (ε = ε_c), so the engine runs a batch of one, as diffusers does.
 */

/** Whether a guidance scale needs the unconditional branch. */
export function usesGuidance(scale: number): boolean {
  return scale > 1;
}

/**
 * Combine a batch-of-two UNet output (uncond first, each `n` values) into
 * `out` (length n). With a batch of one, copies the conditional prediction.
 */
export function applyGuidance(batched: Float32Array, n: number, scale: number, out: Float32Array): Float32Array {
  if (batched.length === n) {
    out.set(batched);
    return out;
  }
  if (batched.length !== 2 * n) throw new Error(`guidance: expected ${2 * n} values, got ${batched.length}`);
  for (let i = 0; i < n; i++) {
    const u = batched[i]!;
    out[i] = u + scale * (batched[n + i]! - u);
  }
  return out;
}

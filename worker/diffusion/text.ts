/**
 * SDXL text conditioning (DESIGN 5.6): both CLIP tokenizers and text encoders.
 * Prompt embedding = concat(CLIP-L penultimate [77,768], bigG penultimate
 * [77,1280]) → [77,2048]; pooled = bigG's projected `text_embeds` [1280]. An
 * empty negative prompt is all zeros (diffusers `force_zeros_for_empty_prompt`).
 */
import * as ort from 'onnxruntime-node';
import { MAX_LENGTH, PAD_ID_G, PAD_ID_L, type ClipTokenizer } from './tokenizer.ts';
import { disposeAll, type OrtSession } from './session.ts';

export const WIDTH_L = 768;
export const WIDTH_G = 1280;
export const TEXT_WIDTH = WIDTH_L + WIDTH_G;

export interface TextConditioning {
  /** [B,77,2048], B = number of prompts, in the order given. */
  hidden: Float32Array;
  /** [B,1280]. */
  pooled: Float32Array;
  batch: number;
}

export interface TextEncoders {
  tokenizer: ClipTokenizer;
  encoderL: OrtSession;
  encoderG: OrtSession;
}

/** Hidden state of encoder G: the output that is not `text_embeds`. */
function hiddenName(session: OrtSession): string {
  return session.outputNames.find((n) => n !== 'text_embeds') ?? session.outputNames[0]!;
}

/**
 * Encode prompts in one batch per encoder. `null` entries (an empty negative
 * prompt) come out as zeros without running the encoders for them.
 */
export async function encodePrompts(enc: TextEncoders, prompts: (string | null)[]): Promise<TextConditioning> {
  const batch = prompts.length;
  const hidden = new Float32Array(batch * MAX_LENGTH * TEXT_WIDTH);
  const pooled = new Float32Array(batch * WIDTH_G);
  const real = prompts.map((p, i) => ({ p, i })).filter((x): x is { p: string; i: number } => x.p !== null);
  if (real.length === 0) return { hidden, pooled, batch };
  const n = real.length;
  const idsL = new BigInt64Array(n * MAX_LENGTH);
  const idsG = new BigInt64Array(n * MAX_LENGTH);
  real.forEach(({ p }, j) => {
    idsL.set(enc.tokenizer.tokenize(p, PAD_ID_L), j * MAX_LENGTH);
    idsG.set(enc.tokenizer.tokenize(p, PAD_ID_G), j * MAX_LENGTH);
  });
  const outL = await enc.encoderL.run({ input_ids: new ort.Tensor('int64', idsL, [n, MAX_LENGTH]) });
  const outG = await enc.encoderG.run({ input_ids: new ort.Tensor('int64', idsG, [n, MAX_LENGTH]) });
  const hL = outL[enc.encoderL.outputNames[0]!]!.data as Float32Array;
  const hG = outG[hiddenName(enc.encoderG)]!.data as Float32Array;
  const pG = outG['text_embeds']!.data as Float32Array;
  real.forEach(({ i }, j) => {
    for (let t = 0; t < MAX_LENGTH; t++) {
      const dst = (i * MAX_LENGTH + t) * TEXT_WIDTH;
      hidden.set(hL.subarray((j * MAX_LENGTH + t) * WIDTH_L, (j * MAX_LENGTH + t + 1) * WIDTH_L), dst);
      hidden.set(hG.subarray((j * MAX_LENGTH + t) * WIDTH_G, (j * MAX_LENGTH + t + 1) * WIDTH_G), dst + WIDTH_L);
    }
    pooled.set(pG.subarray(j * WIDTH_G, (j + 1) * WIDTH_G), i * WIDTH_G);
  });
  disposeAll(outL);
  disposeAll(outG);
  return { hidden, pooled, batch };
}

/** Guidance conditioning: [negative, prompt] (uncond first); an empty negative prompt is zeros. */
export async function encodeForGuidance(enc: TextEncoders, prompt: string, negative: string): Promise<TextConditioning> {
  return encodePrompts(enc, [negative.trim() === '' ? null : negative, prompt]);
}

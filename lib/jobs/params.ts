/**
 * What a job asks for: its kind, its input images and its parameters.
 *
 * These zod schemas are the single source of truth for request validation in
 * the API and for the parameters an engine receives in the daemon. Ranges and
 * defaults follow the research pipeline (DESIGN 5.4-5.7).
 */
import { z } from 'zod';

export const JOB_KINDS = ['face_swap', 'cartoonify', 'face_swap_cartoon'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Face-swap engines a request may name; `auto` lets the daemon pick the best ready one. */
export const SWAP_ENGINES = ['auto', 'landmark', 'diffusion', 'replicate'] as const;
export type SwapEngineName = (typeof SWAP_ENGINES)[number];

export const SCHEDULERS = ['euler', 'euler_a', 'dpmpp_2m', 'dpmpp_2m_karras', 'ddim'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;

/** Where an input image comes from: a URL fetched by the daemon, or an upload already in storage. */
export const ImageRefSchema = z.union([
  z.strictObject({ url: z.string() }),
  z.strictObject({ upload: z.string() }),
]);
export type ImageRef = z.infer<typeof ImageRefSchema>;

export const OutputOptionsSchema = z.object({
  output_format: z.enum(OUTPUT_FORMATS).default('png'),
  output_quality: z.int().min(1).max(100).default(90),
});

/** Which faces to use when an image holds several (indices count left to right). */
export const FaceChoiceSchema = z.object({
  face_index: z.int().min(0).max(99).optional(),
  source_face_index: z.int().min(0).max(99).optional(),
  swap_all: z.boolean().default(false),
});

/** Mask options of the research pipeline (DESIGN 5.4). */
export const MaskOptionsSchema = z.object({
  include_hair: z.boolean().default(true),
  include_neck: z.boolean().default(false),
  mask_expand: z.number().min(0).max(1).default(0.3),
  mask_blur: z.number().min(0).max(50).default(15),
  mask_padding: z.int().min(-50).max(50).default(10),
});

/** Diffusion parameters (DESIGN 5.5-5.7); ignored by engines that do not diffuse. */
export const DiffusionOptionsSchema = z.object({
  steps: z.int().min(1).max(100).default(30),
  guidance_scale: z.number().min(1).max(20).default(4.0),
  denoise_strength: z.number().min(0).max(1).default(0.85),
  face_strength: z.number().min(0).max(1.5).default(0.85),
  stop_at: z.number().min(0).max(1).default(0.7),
  shortcut_scale: z.number().min(0).max(2).default(1.0),
  scheduler: z.enum(SCHEDULERS).default('euler'),
  seed: z.int().min(0).max(2 ** 32 - 1).optional(),
  prompt: z.string().max(2000).optional(),
  negative_prompt: z.string().max(2000).default(''),
  auto_prompt: z.boolean().default(false),
  count: z.int().min(1).max(8).default(1),
});

export const FaceSwapParamsSchema = z.object({
  engine: z.enum(SWAP_ENGINES).default('auto'),
  ...OutputOptionsSchema.shape,
  ...FaceChoiceSchema.shape,
  ...MaskOptionsSchema.shape,
  ...DiffusionOptionsSchema.shape,
});
export type FaceSwapParams = z.infer<typeof FaceSwapParamsSchema>;

export const CartoonifyParamsSchema = z.object({
  ...OutputOptionsSchema.shape,
});

export const PARAMS_SCHEMAS = {
  face_swap: FaceSwapParamsSchema,
  cartoonify: CartoonifyParamsSchema,
  // A cartoon face swap takes the face-swap parameters for its second stage.
  face_swap_cartoon: FaceSwapParamsSchema,
} as const;

/**
 * Input image roles per kind, with their request fields: a URL field (the
 * original service's names) and a file field for multipart uploads.
 */
export interface InputField {
  role: string;
  urlField: string;
  fileField: string;
}
const SWAP_INPUTS: InputField[] = [
  { role: 'base', urlField: 'base_image_url', fileField: 'base_image' },
  { role: 'face', urlField: 'face_image_url', fileField: 'face_image' },
];
export const INPUT_FIELDS: Record<JobKind, InputField[]> = {
  face_swap: SWAP_INPUTS,
  cartoonify: [{ role: 'image', urlField: 'image_url', fileField: 'image' }],
  face_swap_cartoon: SWAP_INPUTS,
};

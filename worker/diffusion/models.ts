/**
 * The diffusion engine's model files by role, and the input/output contract
 * of each (DESIGN 6). File names are relative to MODELS_DIR; models/README.md
 * says how a deployer produces each one, and `npm run models:standin -- <dir>`
 * writes tiny stand-ins with the same contracts.
 */
import type { ModelContract } from '../onnx/contract.ts';
import { ARCFACE_512_CONTRACT, BISENET_CONTRACT, SCRFD_CONTRACT } from '../face/contracts.ts';

export const DIFFUSION_ROLES = [
  'detector',
  'recognizer',
  'parser',
  'clip_vision',
  'faceid_projection',
  'text_encoder_l',
  'text_encoder_g',
  'vae_encoder',
  'vae_decoder',
  'unet',
] as const;
export type DiffusionRole = (typeof DIFFUSION_ROLES)[number];

/** File of each role under MODELS_DIR, as in models/manifest.json (the engine resolves through the manifest, so MODEL_FILES can override). */
export const DIFFUSION_FILES: Record<DiffusionRole, string> = {
  detector: 'det_10g.onnx',
  recognizer: 'w600k_r50.onnx',
  parser: 'bisenet_face_parsing.onnx',
  clip_vision: 'clip_vision_vit_h14.onnx',
  faceid_projection: 'ip_adapter_faceid_plusv2_projection.onnx',
  text_encoder_l: 'sdxl_text_encoder_l.onnx',
  text_encoder_g: 'sdxl_text_encoder_g.onnx',
  vae_encoder: 'sdxl_vae_encoder.onnx',
  vae_decoder: 'sdxl_vae_decoder.onnx',
  unet: 'sdxl_inpaint_unet_faceid.onnx',
};

/** Folder under MODELS_DIR with the CLIP BPE files (vocab.json, merges.txt) shared by both SDXL tokenizers (manifest roles tokenizer_vocab, tokenizer_merges). */
export const TOKENIZER_DIR = 'sdxl_tokenizer';

const f32 = 'float32';

export const DIFFUSION_CONTRACTS: Record<DiffusionRole, ModelContract> = {
  detector: SCRFD_CONTRACT,
  recognizer: ARCFACE_512_CONTRACT,
  parser: BISENET_CONTRACT,
  clip_vision: {
    role: 'CLIP vision (ViT-H/14, penultimate hidden states)',
    inputs: [{ name: 'pixel_values', shape: ['N', 3, 224, 224], type: f32 }],
    outputs: [{ shape: ['N', 257, 1280], type: f32 }],
  },
  faceid_projection: {
    role: 'FaceID Plus v2 projection',
    inputs: [
      { name: 'id_embeds', shape: ['N', 512], type: f32 },
      { name: 'clip_embeds', shape: ['N', 257, 1280], type: f32 },
    ],
    outputs: [
      { name: 'id_tokens', shape: ['N', 4, 2048], type: f32 },
      { name: 'resampler_tokens', shape: ['N', 4, 2048], type: f32 },
    ],
  },
  text_encoder_l: {
    role: 'text encoder L (CLIP ViT-L, penultimate hidden state)',
    inputs: [{ name: 'input_ids', shape: ['N', 77], type: 'int64' }],
    outputs: [{ shape: ['N', 77, 768], type: f32 }],
  },
  text_encoder_g: {
    role: 'text encoder G (OpenCLIP bigG, penultimate hidden state + text_embeds)',
    inputs: [{ name: 'input_ids', shape: ['N', 77], type: 'int64' }],
    outputs: [
      { shape: ['N', 77, 1280], type: f32 },
      { name: 'text_embeds', shape: ['N', 1280], type: f32 },
    ],
  },
  vae_encoder: {
    role: 'VAE encoder',
    inputs: [{ name: 'sample', shape: ['N', 3, 'H', 'W'], type: f32 }],
    outputs: [{ name: 'latent_parameters', shape: ['N', 8, 'h', 'w'], type: f32 }],
  },
  vae_decoder: {
    role: 'VAE decoder',
    inputs: [{ name: 'latent_sample', shape: ['N', 4, 'h', 'w'], type: f32 }],
    outputs: [{ name: 'sample', shape: ['N', 3, 'H', 'W'], type: f32 }],
  },
  unet: {
    role: 'UNet (SDXL inpainting, IP-Adapter FaceID built in)',
    inputs: [
      { name: 'sample', shape: ['N', 9, 'h', 'w'], type: f32 },
      { name: 'timestep', shape: [1], type: f32 },
      { name: 'encoder_hidden_states', shape: ['N', 77, 2048], type: f32 },
      { name: 'text_embeds', shape: ['N', 1280], type: f32 },
      { name: 'time_ids', shape: ['N', 6], type: f32 },
      { name: 'ip_tokens', shape: ['N', 4, 2048], type: f32 },
      { name: 'ip_scale', shape: [1], type: f32 },
    ],
    outputs: [{ name: 'out_sample', shape: ['N', 4, 'h', 'w'], type: f32 }],
  },
};

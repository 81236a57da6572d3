/**
 * Writes a complete models directory of tiny stand-in ONNX files with exactly
 * the diffusion engine's contracts (DESIGN 6), so the engine runs end to end on
 * a CPU without any weights. Used by the tests and the benchmark.
 *
 *   npm run models:standin -- <dir> [--fixtures <path>]
 *
 * Roles with a real small model in the test fixtures use it (the SCRFD
 * detector, the CLIP tokenizer files). Every other role is a stand-in:
 *
 * - unet: out_sample = 0.5·sample[:, 0:4] + 0.1 (the DESIGN 5.7 loop check);
 * - recognizer: 512-d (the projection's contract) from 8×8 average-pooled
 *   pixels times a fixed random matrix. The fixture recognizer is 128-d and
 *   lives in another embedding space, so it cannot feed the projection;
 * - parser: a fixed label map (skin disc in the middle of the parse crop);
 * - clip_vision, faceid_projection, text encoders: small linear maps of their
 *   inputs broadcast to the contract shapes (outputs depend on the inputs);
 * - vae: encoder = 8×8 average pool to (r, g, b, mean) with logvar −10,
 *   decoder = the first three channels upsampled ×8 (nearest), so a VAE round
 *   trip of a flat image is the identity.
 *
 * These prove the plumbing (names, shapes, batching, scheduling, masks,
 * paste-back), not image quality.
 */
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { DIFFUSION_FILES, TOKENIZER_DIR, type DiffusionRole } from '../worker/diffusion/models.ts';
import { createGaussianRng } from '../worker/diffusion/noise.ts';
import { bytesToUnicode } from '../worker/diffusion/tokenizer.ts';

const { onnx } = onnxProto;
type Dim = number | string;

const FLOAT = 1;
const INT64 = 7;

function valueInfo(name: string, elemType: number, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floatTensor(name: string, dims: number[], data: ArrayLike<number>): OnnxTypes.ITensorProto {
  const arr = Float32Array.from(data);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(arr.buffer) };
}

function int64Tensor(name: string, dims: number[], data: number[]): OnnxTypes.ITensorProto {
  const arr = BigInt64Array.from(data.map((v) => BigInt(v)));
  return { name, dims, dataType: INT64, rawData: new Uint8Array(arr.buffer) };
}

type Attr = { name: string; i?: number; ints?: number[]; f?: number; s?: string };

function node(opType: string, inputs: string[], outputs: string[], attrs: Attr[] = []): OnnxTypes.INodeProto {
  return {
    opType,
    input: inputs,
    output: outputs,
    attribute: attrs.map((a) => {
      if (a.ints) return { name: a.name, type: onnx.AttributeProto.AttributeType.INTS, ints: a.ints };
      if (a.f !== undefined) return { name: a.name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.f };
      if (a.s !== undefined) return { name: a.name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(a.s) };
      return { name: a.name, type: onnx.AttributeProto.AttributeType.INT, i: a.i ?? 0 };
    }),
  };
}

function model(name: string, graph: {
  inputs: OnnxTypes.IValueInfoProto[];
  outputs: OnnxTypes.IValueInfoProto[];
  nodes: OnnxTypes.INodeProto[];
  inits?: OnnxTypes.ITensorProto[];
}): Uint8Array {
  const m = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'faceswap standin-models',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name,
      input: graph.inputs,
      output: graph.outputs,
      node: graph.nodes,
      initializer: graph.inits ?? [],
    },
  });
  return onnx.ModelProto.encode(m).finish();
}

/** Deterministic pseudo-random weights. */
function weights(seed: number, n: number, scale: number): Float32Array {
  const out = createGaussianRng(seed).fill(new Float32Array(n));
  for (let i = 0; i < n; i++) out[i]! *= scale;
  return out;
}

/** out_sample = 0.5 · sample[:, 0:4] + 0.1 (DESIGN 6). */
export function unetStandin(): Uint8Array {
  return model('unet_standin', {
    inputs: [
      valueInfo('sample', FLOAT, ['N', 9, 'h', 'w']),
      valueInfo('timestep', FLOAT, [1]),
      valueInfo('encoder_hidden_states', FLOAT, ['N', 77, 2048]),
      valueInfo('text_embeds', FLOAT, ['N', 1280]),
      valueInfo('time_ids', FLOAT, ['N', 6]),
      valueInfo('ip_tokens', FLOAT, ['N', 4, 2048]),
      valueInfo('ip_scale', FLOAT, [1]),
    ],
    outputs: [valueInfo('out_sample', FLOAT, ['N', 4, 'h', 'w'])],
    inits: [
      int64Tensor('starts', [1], [0]),
      int64Tensor('ends', [1], [4]),
      int64Tensor('axes', [1], [1]),
      floatTensor('half', [], [0.5]),
      floatTensor('tenth', [], [0.1]),
    ],
    nodes: [
      node('Slice', ['sample', 'starts', 'ends', 'axes'], ['lat']),
      node('Mul', ['lat', 'half'], ['scaled']),
      node('Add', ['scaled', 'tenth'], ['out_sample']),
    ],
  });
}

export function vaeEncoderStandin(): Uint8Array {
  // mean = (r, g, b, (r+g+b)/3), logvar = −10.
  const w = new Float32Array(8 * 3);
  w.set([1, 0, 0, 0, 1, 0, 0, 0, 1, 1 / 3, 1 / 3, 1 / 3]);
  const b = [0, 0, 0, 0, -10, -10, -10, -10];
  return model('vae_encoder_standin', {
    inputs: [valueInfo('sample', FLOAT, ['N', 3, 'H', 'W'])],
    outputs: [valueInfo('latent_parameters', FLOAT, ['N', 8, 'h', 'w'])],
    inits: [floatTensor('w', [8, 3, 1, 1], w), floatTensor('b', [8], b)],
    nodes: [
      node('AveragePool', ['sample'], ['pooled'], [{ name: 'kernel_shape', ints: [8, 8] }, { name: 'strides', ints: [8, 8] }]),
      node('Conv', ['pooled', 'w', 'b'], ['latent_parameters']),
    ],
  });
}

export function vaeDecoderStandin(): Uint8Array {
  const w = new Float32Array(3 * 4);
  w.set([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  return model('vae_decoder_standin', {
    inputs: [valueInfo('latent_sample', FLOAT, ['N', 4, 'h', 'w'])],
    outputs: [valueInfo('sample', FLOAT, ['N', 3, 'H', 'W'])],
    inits: [floatTensor('w', [3, 4, 1, 1], w), floatTensor('scales', [4], [1, 1, 8, 8])],
    nodes: [
      node('Conv', ['latent_sample', 'w'], ['rgb']),
      node('Resize', ['rgb', '', 'scales'], ['sample'], [{ name: 'mode', s: 'nearest' }]),
    ],
  });
}

function textEncoderStandin(width: number, withPooled: boolean, seed: number): Uint8Array {
  const outputs = [valueInfo('hidden_states', FLOAT, ['N', 77, width])];
  const nodes = [
    node('Cast', ['input_ids'], ['ids_f'], [{ name: 'to', i: FLOAT }]),
    node('Mul', ['ids_f', 'inv_vocab'], ['ids_n']),
    node('Unsqueeze', ['ids_n', 'last_axis'], ['ids_col']),
    node('MatMul', ['ids_col', 'w'], ['hidden_states']),
  ];
  if (withPooled) {
    outputs.push(valueInfo('text_embeds', FLOAT, ['N', width]));
    nodes.push(node('ReduceMean', ['hidden_states'], ['text_embeds'], [{ name: 'axes', ints: [1] }, { name: 'keepdims', i: 0 }]));
  }
  return model('text_encoder_standin', {
    inputs: [valueInfo('input_ids', INT64, ['N', 77])],
    outputs,
    inits: [
      floatTensor('inv_vocab', [], [1 / 49408]),
      int64Tensor('last_axis', [1], [-1]),
      floatTensor('w', [1, width], weights(seed, width, 1)),
    ],
    nodes,
  });
}

export function clipVisionStandin(): Uint8Array {
  return model('clip_vision_standin', {
    inputs: [valueInfo('pixel_values', FLOAT, ['N', 3, 224, 224])],
    outputs: [valueInfo('hidden_states', FLOAT, ['N', 257, 1280])],
    inits: [
      floatTensor('w', [3, 1280], weights(11, 3 * 1280, 1)),
      int64Tensor('axis1', [1], [1]),
      int64Tensor('shape', [3], [1, 257, 1]),
    ],
    nodes: [
      node('GlobalAveragePool', ['pixel_values'], ['pooled']),
      node('Flatten', ['pooled'], ['flat'], [{ name: 'axis', i: 1 }]),
      node('MatMul', ['flat', 'w'], ['feat']),
      node('Unsqueeze', ['feat', 'axis1'], ['feat3']),
      node('Expand', ['feat3', 'shape'], ['hidden_states']),
    ],
  });
}

export function projectionStandin(): Uint8Array {
  return model('faceid_projection_standin', {
    inputs: [valueInfo('id_embeds', FLOAT, ['N', 512]), valueInfo('clip_embeds', FLOAT, ['N', 257, 1280])],
    outputs: [valueInfo('id_tokens', FLOAT, ['N', 4, 2048]), valueInfo('resampler_tokens', FLOAT, ['N', 4, 2048])],
    inits: [
      floatTensor('w1', [512, 32], weights(21, 512 * 32, 0.05)),
      floatTensor('w2', [1280, 8], weights(22, 1280 * 8, 0.05)),
      int64Tensor('shape1', [3], [-1, 4, 8]),
      int64Tensor('rep1', [3], [1, 1, 256]),
      int64Tensor('rep2', [3], [1, 4, 256]),
    ],
    nodes: [
      node('MatMul', ['id_embeds', 'w1'], ['id32']),
      node('Reshape', ['id32', 'shape1'], ['id48']),
      node('Tile', ['id48', 'rep1'], ['id_tokens']),
      node('ReduceMean', ['clip_embeds'], ['clip_mean'], [{ name: 'axes', ints: [1] }, { name: 'keepdims', i: 1 }]),
      node('MatMul', ['clip_mean', 'w2'], ['clip8']),
      node('Tile', ['clip8', 'rep2'], ['resampler_tokens']),
    ],
  });
}

/** 512-d recognizer stand-in: 14×14 average pool → 192 values → fixed random 192×512 matrix. */
export function recognizerStandin(): Uint8Array {
  return model('arcface512_standin', {
    inputs: [valueInfo('input.1', FLOAT, ['N', 3, 112, 112])],
    outputs: [valueInfo('683', FLOAT, ['N', 512])],
    inits: [floatTensor('w', [192, 512], weights(31, 192 * 512, 1))],
    nodes: [
      node('AveragePool', ['input.1'], ['pooled'], [{ name: 'kernel_shape', ints: [14, 14] }, { name: 'strides', ints: [14, 14] }]),
      node('Flatten', ['pooled'], ['flat'], [{ name: 'axis', i: 1 }]),
      node('MatMul', ['flat', 'w'], ['683']),
    ],
  });
}

/**
 * BiSeNet stand-in: fixed logits, skin (1) in a disc at the centre of the
 * parse crop, nose (10) and lips (12) inside it, background elsewhere. The
 * logits are built at 32×32 and resized (nearest) to 512×512; adding
 * 0·mean(input) keeps ORT from folding the 80 MB constant at load time.
 */
export function parserStandin(): Uint8Array {
  const g = 32;
  const logits = new Float32Array(19 * g * g);
  for (let y = 0; y < g; y++) {
    for (let x = 0; x < g; x++) {
      const dx = (x + 0.5) / g - 0.5;
      const dy = (y + 0.5) / g - 0.52;
      const r = Math.hypot(dx / 0.8, dy);
      let cls = 0;
      if (r < 0.3) cls = 1;
      if (Math.abs(dx) < 0.05 && dy > -0.05 && dy < 0.08) cls = 10;
      if (Math.abs(dx) < 0.09 && dy > 0.14 && dy < 0.18) cls = 12;
      logits[cls * g * g + y * g + x] = 10;
    }
  }
  return model('bisenet_standin', {
    inputs: [valueInfo('input', FLOAT, [1, 3, 512, 512])],
    outputs: [valueInfo('out', FLOAT, [1, 19, 512, 512])],
    inits: [
      floatTensor('logits', [1, 19, g, g], logits),
      floatTensor('zero', [], [0]),
      floatTensor('scales', [4], [1, 1, 512 / g, 512 / g]),
    ],
    nodes: [
      node('ReduceMean', ['input'], ['m'], [{ name: 'axes', ints: [1, 2, 3] }, { name: 'keepdims', i: 1 }]),
      node('Mul', ['m', 'zero'], ['z']),
      node('Add', ['logits', 'z'], ['l']),
      node('Resize', ['l', '', 'scales'], ['out'], [{ name: 'mode', s: 'nearest' }]),
    ],
  });
}

/** A byte-level CLIP vocabulary without merges, for when no real tokenizer files are at hand. */
function syntheticTokenizer(): { vocab: Record<string, number>; merges: string } {
  const vocab: Record<string, number> = {};
  // CLIP's first 256 ids are the byte characters in code-point order, then the same with '</w>'.
  const chars = bytesToUnicode().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  let id = 0;
  for (const c of chars) vocab[c] = id++;
  for (const c of chars) vocab[c + '</w>'] = id++;
  vocab['<|startoftext|>'] = 49406;
  vocab['<|endoftext|>'] = 49407;
  return { vocab, merges: '#version: 0.2\n' };
}

/** Copy without keeping the fixtures' read-only mode, so the directory can be regenerated in place. */
async function copy(src: string, dst: string): Promise<void> {
  await fs.rm(dst, { force: true });
  await fs.copyFile(src, dst);
  await fs.chmod(dst, 0o644);
}

export interface StandinOptions {
  /** The shared fixtures folder (real SCRFD detector, SDXL tokenizer files). Default ../shared/fixtures. */
  fixtures?: string;
}

/** Write every model of the diffusion engine into `dir`; returns the files written. */
export async function writeStandinModels(dir: string, opts: StandinOptions = {}): Promise<string[]> {
  const fixtures = path.resolve(opts.fixtures ?? path.join('..', 'shared', 'fixtures'));
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (role: DiffusionRole, bytes: Uint8Array) => {
    const file = path.join(dir, DIFFUSION_FILES[role]);
    await fs.writeFile(file, bytes);
    written.push(file);
  };
  const detector = path.join(fixtures, 'models', 'insightface_det_500m.onnx');
  if (!existsSync(detector)) {
    throw new Error(`The stand-in directory uses the real SCRFD detector from the fixtures; not found: ${detector} (pass --fixtures <path>)`);
  }
  await copy(detector, path.join(dir, DIFFUSION_FILES.detector));
  written.push(path.join(dir, DIFFUSION_FILES.detector));
  await put('recognizer', recognizerStandin());
  await put('parser', parserStandin());
  await put('clip_vision', clipVisionStandin());
  await put('faceid_projection', projectionStandin());
  await put('text_encoder_l', textEncoderStandin(768, false, 41));
  await put('text_encoder_g', textEncoderStandin(1280, true, 42));
  await put('vae_encoder', vaeEncoderStandin());
  await put('vae_decoder', vaeDecoderStandin());
  await put('unet', unetStandin());

  const tokDir = path.join(dir, TOKENIZER_DIR);
  await fs.mkdir(tokDir, { recursive: true });
  const tokSrc = path.join(fixtures, 'sdxl', 'tokenizer');
  if (existsSync(path.join(tokSrc, 'vocab.json')) && existsSync(path.join(tokSrc, 'merges.txt'))) {
    await copy(path.join(tokSrc, 'vocab.json'), path.join(tokDir, 'vocab.json'));
    await copy(path.join(tokSrc, 'merges.txt'), path.join(tokDir, 'merges.txt'));
  } else {
    const t = syntheticTokenizer();
    await fs.writeFile(path.join(tokDir, 'vocab.json'), JSON.stringify(t.vocab));
    await fs.writeFile(path.join(tokDir, 'merges.txt'), t.merges);
  }
  written.push(path.join(tokDir, 'vocab.json'), path.join(tokDir, 'merges.txt'));
  return written;
}

async function main(argv: string[]): Promise<void> {
  let dir: string | undefined;
  let fixtures: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--fixtures') fixtures = argv[++i];
    else if (a === '--help' || a === '-h') dir = undefined;
    else dir = a;
  }
  if (!dir) {
    console.error('usage: npm run models:standin -- <dir> [--fixtures ../shared/fixtures]');
    process.exitCode = 2;
    return;
  }
  const files = await writeStandinModels(dir, fixtures ? { fixtures } : {});
  for (const f of files) console.log(f);
}

if (import.meta.main) {
  await main(process.argv.slice(2));
}

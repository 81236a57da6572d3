/**
 * The CLIP byte-level BPE tokenizer (OpenAI CLIP / transformers CLIPTokenizer)
 * from `vocab.json` and `merges.txt`. SDXL has two tokenizers with the same
 * vocabulary; they differ only in the pad token (49407 `<|endoftext|>` for the
 * first, 0 `!` for the second). Sequences are BOS + at most 75 tokens + EOS,
 * padded to 77.
 *
 * Text normalisation follows transformers' fast tokenizer: NFC, whitespace
 * runs collapsed to one space, trimmed, lower-cased (ftfy's mojibake repair is
 * not reproduced; it changes nothing for well-formed text).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export const BOS_ID = 49406;
export const EOS_ID = 49407;
export const MAX_LENGTH = 77;

const PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's reversible byte → printable-unicode map (index: byte value). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  for (let i = 0; i < bs.length; i++) out[bs[i]!] = String.fromCodePoint(cs[i]!);
  return out;
}

export interface ClipTokenizer {
  /** BPE ids of the text, without BOS/EOS and without truncation. */
  encode(text: string): number[];
  /** BOS + first 75 ids + EOS, padded to 77 with `padId`. */
  tokenize(text: string, padId: number): BigInt64Array;
  readonly vocabSize: number;
}

export function createClipTokenizer(vocab: Record<string, number>, mergesText: string): ClipTokenizer {
  const byteMap = bytesToUnicode();
  const encoder = new Map(Object.entries(vocab));
  const ranks = new Map<string, number>();
  const lines = mergesText.split('\n');
  // CLIP uses the first 49152 − 256 − 2 merges; the file carries exactly these after the version line.
  let rank = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (i === 0 && line.startsWith('#version')) continue;
    if (!line.trim()) continue;
    ranks.set(line, rank++);
  }
  const cache = new Map<string, string[]>();
  const textEncoder = new TextEncoder();

  function bpe(token: string): string[] {
    const hit = cache.get(token);
    if (hit) return hit;
    const chars = [...token];
    let word = chars.slice(0, -1).concat(chars[chars.length - 1] + '</w>');
    if (word.length === 1) {
      cache.set(token, word);
      return word;
    }
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i++;
        }
      }
      word = merged;
      if (word.length === 1) break;
    }
    if (cache.size < 10_000) cache.set(token, word);
    return word;
  }

  function encode(text: string): number[] {
    const clean = text.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      const piece = m[0];
      if (piece === '<|startoftext|>') {
        ids.push(BOS_ID);
        continue;
      }
      if (piece === '<|endoftext|>') {
        ids.push(EOS_ID);
        continue;
      }
      let mapped = '';
      for (const b of textEncoder.encode(piece)) mapped += byteMap[b];
      for (const t of bpe(mapped)) {
        const id = encoder.get(t);
        if (id !== undefined) ids.push(id);
        else ids.push(EOS_ID); // unk token is <|endoftext|>
      }
    }
    return ids;
  }

  return {
    encode,
    vocabSize: encoder.size,
    tokenize(text, padId) {
      const body = encode(text).slice(0, MAX_LENGTH - 2);
      const out = new BigInt64Array(MAX_LENGTH).fill(BigInt(padId));
      out[0] = BigInt(BOS_ID);
      for (let i = 0; i < body.length; i++) out[i + 1] = BigInt(body[i]!);
      out[body.length + 1] = BigInt(EOS_ID);
      return out;
    },
  };
}

/** Load a tokenizer from a folder holding vocab.json and merges.txt. */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const [vocab, merges] = await Promise.all([
    fs.readFile(path.join(dir, 'vocab.json'), 'utf8'),
    fs.readFile(path.join(dir, 'merges.txt'), 'utf8'),
  ]);
  return createClipTokenizer(JSON.parse(vocab) as Record<string, number>, merges);
}

/** Pad ids of SDXL's two tokenizers. */
export const PAD_ID_L = EOS_ID;
export const PAD_ID_G = 0;

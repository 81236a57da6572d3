/**
 * What we ask the vision model, and how its answer becomes a diffusion
 * prompt. The model writes only the description of the person; the framing
 * around it is ours, so every prompt has the same shape and the fallback is
 * the same prompt with a neutral subject.
 */

export const DESCRIBE_FACE_INSTRUCTIONS = [
  'You describe the person in a photo for an image-generation prompt.',
  'Describe only what is visible: apparent age range, gender presentation, skin tone,',
  'hair style and colour, facial hair, glasses, and facial expression.',
  'Never name or identify the person and never guess who they are, their ethnicity or nationality.',
  'Answer with one line of comma-separated phrases, at most 40 words, no full sentences, no quotes,',
  'starting with the person, for example: a smiling woman in her thirties, light olive skin, shoulder-length wavy dark brown hair.',
].join(' ');

export const DESCRIBE_FACE_REQUEST = 'Describe the person in this photo.';

const PROMPT_PREFIX = 'portrait photo of ';
const PROMPT_SUFFIX = ', detailed face, natural skin texture, soft lighting, sharp focus';

/** The prompt used when no description is available (no key, the model failed, or refused). */
export const FALLBACK_PROMPT = `${PROMPT_PREFIX}a person${PROMPT_SUFFIX}`;

/** Longest description kept: the prompt must fit CLIP's 77 tokens with its framing. */
const MAX_DESCRIPTION_CHARS = 280;

const REFUSAL = /^(i'?m sorry|i am sorry|sorry|i can(no|')?t|i am unable|i'?m unable|unable to|as an ai)\b/i;

/**
 * The model's answer as a one-line description, or a reason why it is not
 * usable (empty, a refusal).
 */
export function cleanDescription(text: string): { description: string } | { problem: string } {
  let line = text
    .replace(/```[a-z]*\n?/gi, '')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  if (!line) return { problem: 'the answer is empty' };
  line = line
    .replace(/^(description|prompt)\s*:\s*/i, '')
    .replace(/^["'“”‘’`]+|["'“”‘’`]+$/g, '')
    .replace(/^(a )?portrait (photo )?of\s+/i, '')
    .replace(/\s+/g, ' ')
    .replace(/[.;:,\s]+$/, '')
    .trim();
  if (!line) return { problem: 'the answer is empty' };
  if (REFUSAL.test(line)) return { problem: `the model declined: ${line.slice(0, 120)}` };
  if (line.length > MAX_DESCRIPTION_CHARS) {
    const cut = line.slice(0, MAX_DESCRIPTION_CHARS);
    const comma = cut.lastIndexOf(',');
    line = (comma > 40 ? cut.slice(0, comma) : cut).trim();
  }
  return { description: line };
}

export function promptFromDescription(description: string): string {
  return `${PROMPT_PREFIX}${description}${PROMPT_SUFFIX}`;
}

/**
 * Model contracts (DESIGN 6): the input and output names and shapes a role
 * expects. Sessions are checked against their role's contract when loaded, so
 * a wrong file fails at start-up with a message naming the file and the
 * mismatch, not with a shape error in the middle of a job.
 */
import type { InferenceSession } from 'onnxruntime-node';

/**
 * One dimension: a number must match exactly; a string (a symbolic name such
 * as "N" or "H"), -1 or null matches anything. A dimension the model leaves
 * symbolic matches any expected value.
 */
export type Dim = number | string | null;

export interface TensorContract {
  /** Expected name; omit to match by position only (SCRFD exports name their outputs by node number). */
  name?: string;
  /** Expected shape, or several accepted shapes (e.g. with and without a leading batch dimension). Omit to skip. */
  shape?: Dim[] | Dim[][];
  /** Element type, e.g. "float32" or "int64". Omit to skip. */
  type?: string;
}

export interface ModelContract {
  /** Role name, for messages ("detector", "unet", ...). */
  role: string;
  inputs: TensorContract[];
  outputs: TensorContract[];
  /** Allow the model to have more outputs than listed (they are matched by position from the start). Default false. */
  extraOutputs?: boolean;
}

interface Meta {
  name: string;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

function metaOf(list: readonly InferenceSession.ValueMetadata[]): Meta[] {
  return list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : { name: m.name }));
}

function fmtShape(shape: ReadonlyArray<Dim> | undefined): string {
  if (!shape) return '[?]';
  return `[${shape.map((d) => (d === null || d === -1 ? '?' : typeof d === 'string' ? d || '?' : String(d))).join(',')}]`;
}

function dimMatches(expected: Dim, actual: number | string): boolean {
  if (expected === null || expected === -1 || typeof expected === 'string') return true;
  if (typeof actual === 'string' || actual < 0) return true; // symbolic in the model
  return expected === actual;
}

function shapeMatches(expected: Dim[], actual: ReadonlyArray<number | string>): boolean {
  return expected.length === actual.length && expected.every((d, i) => dimMatches(d, actual[i]!));
}

function alternatives(shape: Dim[] | Dim[][]): Dim[][] {
  return shape.length > 0 && Array.isArray(shape[0]) ? (shape as Dim[][]) : [shape as Dim[]];
}

function checkList(kind: 'input' | 'output', expected: TensorContract[], actual: Meta[], allowExtra: boolean): string[] {
  const problems: string[] = [];
  if (actual.length < expected.length || (!allowExtra && actual.length !== expected.length)) {
    problems.push(
      `expected ${expected.length} ${kind}s (${expected.map((e, i) => e.name ?? `#${i}`).join(', ')}), ` +
        `the model has ${actual.length} (${actual.map((a) => a.name).join(', ')})`,
    );
  }
  expected.forEach((exp, i) => {
    // Match by name where given (any position), else by position.
    const act = exp.name !== undefined ? actual.find((a) => a.name === exp.name) : actual[i];
    const label = exp.name !== undefined ? `${kind} "${exp.name}"` : `${kind} #${i}${act ? ` ("${act.name}")` : ''}`;
    if (!act) {
      problems.push(`${label} is missing (the model has ${kind}s ${actual.map((a) => `"${a.name}"`).join(', ') || 'none'})`);
      return;
    }
    if (exp.type !== undefined && act.type !== undefined && exp.type !== act.type) {
      problems.push(`${label} has type ${act.type}, expected ${exp.type}`);
    }
    if (exp.shape !== undefined && act.shape !== undefined) {
      const alts = alternatives(exp.shape);
      if (!alts.some((s) => shapeMatches(s, act.shape!))) {
        problems.push(`${label} has shape ${fmtShape(act.shape)}, expected ${alts.map(fmtShape).join(' or ')}`);
      }
    }
  });
  return problems;
}

export class ModelContractError extends Error {
  readonly file: string;
  readonly problems: string[];
  constructor(file: string, role: string, problems: string[]) {
    super(`Model ${file} does not fit the ${role} contract: ${problems.join('; ')}`);
    this.name = 'ModelContractError';
    this.file = file;
    this.problems = problems;
  }
}

/** Problems with a session's inputs/outputs against a contract; empty when it fits. */
export function contractProblems(
  session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>,
  contract: ModelContract,
): string[] {
  return [
    ...checkList('input', contract.inputs, metaOf(session.inputMetadata), false),
    ...checkList('output', contract.outputs, metaOf(session.outputMetadata), contract.extraOutputs ?? false),
  ];
}

/** Throws ModelContractError naming the file and every mismatch. */
export function checkContract(
  session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>,
  contract: ModelContract,
  file: string,
): void {
  const problems = contractProblems(session, contract);
  if (problems.length > 0) throw new ModelContractError(file, contract.role, problems);
}

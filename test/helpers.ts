// Shared by the tests: the real default model with a small, test-friendly configuration.
import type { Test } from 'tap'
import { Model, type ModelOptions, type Sequence, type SequenceResult } from '../lib/index.js'
import type { NativeContextOptions } from '../lib/native.js'

export const testModelOptions: ModelOptions = { threads: 1, parallel: 8, contextSize: 256, kvSize: 4096 }

/** Loads the default model; it is disposed when the test ends. */
export async function loadModel(t: Test, options: ModelOptions = {}): Promise<Model> {
  const model = await Model.load(undefined, { ...testModelOptions, ...options })
  t.teardown(() => model.dispose())
  return model
}

export async function collect(seq: Sequence): Promise<{ text: string; pieces: string[]; result: SequenceResult }> {
  const pieces: string[] = []
  for await (const piece of seq) pieces.push(piece)
  return { text: pieces.join(''), pieces, result: await seq.result }
}

export const PROMPT = 'It is a truth universally acknowledged'

/** Options for native.createContext, which takes every field (lib/model.ts owns the defaults): small, one thread. */
export function contextOptions(o: Partial<NativeContextOptions> & { nCtx: number }): NativeContextOptions {
  const nBatch = o.nBatch ?? 512
  return { nSeqMax: 1, nBatch, nUbatch: Math.min(nBatch, 512), threads: 1, threadsBatch: o.threads ?? 1, kvUnified: true, flashAttention: 'auto', typeK: 'f16', typeV: 'f16', ...o }
}

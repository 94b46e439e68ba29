// Shared by the tests: the real default model with a small, test-friendly configuration.
import type { Test } from 'tap'
import { Model, type ModelOptions, type Sequence, type SequenceResult } from '../lib/index.js'

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

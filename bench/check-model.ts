// Smoke test of a generated model through hearth's full library path: load, tokenize, render the chat
// template, generate. Catches files llama.cpp loads but that would fail later (no EOG token, broken
// template, tokenizer gaps) before a benchmark spends minutes on them.
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Model } from '../lib/index.js'

const SENTENCE = 'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.'

export interface ModelCheck {
  file: string
  sizeBytes: number
  nParams: number
  nVocab: number
  loadMs: number
  /** the sentence's tokens, each as text */
  pieces: string[]
  chatPromptTokens: number
  /** the chat prompt as text, special tokens included */
  chatPromptText: string
  generated: string
  completionTokens: number
  promptTokensPerSec: number
  decodeTokensPerSec: number
}

export async function checkModel(path: string): Promise<ModelCheck> {
  const sizeBytes = (await stat(path)).size
  const t0 = performance.now()
  const model = await Model.load(path, { threads: 2, contextSize: 2048, parallel: 1 })
  const loadMs = performance.now() - t0
  try {
    const tokens = model.tokenize(SENTENCE, { addSpecial: false })
    const pieces = Array.from(tokens, (t) => model.detokenize([t]))
    const chat = await model.chatPrompt([{ role: 'user', content: 'hi' }])
    const seq = model.generate(chat, { temperature: 0, maxTokens: 8, ignoreEos: true })
    let generated = ''
    for await (const piece of seq) generated += piece
    const result = await seq.result
    if (result.error) throw result.error
    const { promptMs, generateMs } = result.timings
    return {
      file: basename(path),
      sizeBytes,
      nParams: model.facts.nParams,
      nVocab: model.facts.nVocab,
      loadMs,
      pieces,
      chatPromptTokens: chat.length,
      chatPromptText: model.detokenize(chat, true),
      generated,
      completionTokens: result.completionTokens,
      promptTokensPerSec: (result.promptTokens / promptMs) * 1000,
      // generateMs runs from the first sampled token to the last: n - 1 decode steps
      decodeTokensPerSec: ((result.completionTokens - 1) / generateMs) * 1000,
    }
  } finally {
    await model.dispose()
  }
}

export function formatCheck(c: ModelCheck): string {
  return [
    `${c.file}: ${(c.sizeBytes / 1e6).toFixed(0)} MB, ${(c.nParams / 1e6).toFixed(1)}M params, vocab ${c.nVocab}, loaded in ${c.loadMs.toFixed(0)} ms`,
    `  tokenize: ${c.pieces.length} tokens ${JSON.stringify(c.pieces.slice(0, 16))}`,
    `  chat prompt: ${c.chatPromptTokens} tokens ${JSON.stringify(c.chatPromptText)}`,
    `  generated ${c.completionTokens} tokens: ${JSON.stringify(c.generated)}`,
    `  prompt ${c.promptTokensPerSec.toFixed(1)} tok/s, decode ${c.decodeTokensPerSec.toFixed(1)} tok/s (2 threads)`,
  ].join('\n')
}

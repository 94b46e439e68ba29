// Facts about the served model that the scenarios need: its size, the weight bytes a decode step reads, and
// the token ids random prompts may use.
import { basename } from 'node:path'
import { readGGUF } from '../gguf-reader.js'
import { normalTokenIds, weightBytesPerToken } from './gguf-tensors.js'
import { RandomPrompts } from './prompts.js'
import type { ModelInfo } from './result.js'

export interface LoadedModelInfo {
  info: ModelInfo
  prompts: RandomPrompts
}

export function inspectModel(path: string): LoadedModelInfo {
  const s = readGGUF(path)
  return {
    info: { file: basename(path), path, fileBytes: s.fileBytes, weightBytesPerToken: Math.round(weightBytesPerToken(s)) },
    prompts: new RandomPrompts(normalTokenIds(s)),
  }
}

// What a models list says about a GGUF file before it is loaded, read from its header (lib/gguf-header.ts): its
// type (chat model or embedding model), architecture, quantization, parameter count, trained context, what its
// chat template can do, and the memory a load is expected to take. Once a model is loaded, llama.cpp's own
// numbers replace the estimate (lib/model-registry.ts).
import { numberKey, stringKey, type GgufHeader } from './gguf-header.js'

/** 'llm' generates text; 'embeddings' is an encoder (BERT-style) that only embeds. */
export type ModelType = 'llm' | 'embeddings'

export interface ModelInfo {
  type: ModelType
  architecture: string
  /** general.name, else '' */
  name: string
  /** llama_ftype's name (Q4_K_M, F16 ...), or the commonest tensor type when the file does not say */
  quantization: string
  /** weight bits per parameter, from the tensor data's size */
  bitsPerWeight: number | null
  nParams: number
  /** "7B", "500M": the file's general.size_label, else from nParams */
  paramsString: string | null
  maxContextLength: number
  /** the GGUF carries a chat template that takes tools */
  toolUse: boolean
  /** the template has a thinking block (<think>, reasoning_content, enable_thinking) */
  reasoning: boolean
  /** numbers the memory estimate needs */
  shape: { nLayer: number; nEmbd: number; nHeadKv: number; headDimK: number; headDimV: number; nVocab: number; nFf: number }
}

// llama_ftype (include/llama.h) by value
const FTYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M',
  13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS',
  21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S',
  29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE', 39: 'NVFP4',
  40: 'Q1_0', 41: 'Q2_0',
}

// ggml_type (ggml/include/ggml.h) by value, for files without general.file_type
const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64',
  29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
}

/** Architectures llama.cpp runs as encoders only: they embed and cannot generate. */
const ENCODER_ARCHITECTURES = new Set(['bert', 'nomic-bert', 'nomic-bert-moe', 'jina-bert-v2', 'jina-bert-v3', 'modern-bert', 'neo-bert', 'eurobert', 't5encoder'])

/**
 * Whether a model only embeds: an encoder architecture, a model that declares a pooling type (embedding
 * fine-tunes of decoder architectures, e.g. Qwen3-Embedding, declare one), or one with non-causal attention.
 */
export function isEmbeddingModel(architecture: string, metadata: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>): boolean {
  const get = (k: string) => (metadata instanceof Map ? metadata.get(k) : (metadata as Record<string, unknown>)[k])
  if (ENCODER_ARCHITECTURES.has(architecture)) return true
  const pooling = Number(get(`${architecture}.pooling_type`) ?? 0)
  if (pooling >= 1) return true
  const causal = get(`${architecture}.attention.causal`)
  return causal === false || causal === 'false'
}

/** "7B", "1.5B", "500M", "33M" */
export function paramsString(nParams: number): string | null {
  if (!(nParams > 0)) return null
  const [div, unit] = nParams >= 1e9 ? [1e9, 'B'] : nParams >= 1e6 ? [1e6, 'M'] : [1e3, 'K']
  const v = nParams / div
  return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10}${unit}`
}

/** Whether a chat template's text takes tools, and whether it has a thinking block. */
export function templateCapabilities(template: string | undefined): { toolUse: boolean; reasoning: boolean } {
  if (!template) return { toolUse: false, reasoning: false }
  return {
    toolUse: /\btools\b/.test(template),
    reasoning: /<think>|reasoning_content|enable_thinking|<\|channel\|>/.test(template),
  }
}

/** The list facts of a model from its header; `tensorBytes` is the size of its tensor data (all splits). */
export function modelInfo(h: GgufHeader, tensorBytes: number, tensors = h.tensors): ModelInfo {
  const arch = stringKey(h, 'general.architecture') ?? 'unknown'
  const key = (k: string) => numberKey(h, `${arch}.${k}`)
  const nParams = tensors.reduce((n, t) => n + t.count, 0)
  const ftype = numberKey(h, 'general.file_type')
  const quantization = ftype !== undefined && FTYPE_NAMES[ftype] ? FTYPE_NAMES[ftype] : commonestType(tensors)
  const nEmbd = key('embedding_length') ?? 0
  const nHead = key('attention.head_count') ?? 0
  const headDim = nHead > 0 ? nEmbd / nHead : 0
  const template = stringKey(h, 'tokenizer.chat_template')
  const sizeLabel = stringKey(h, 'general.size_label')
  return {
    type: isEmbeddingModel(arch, h.metadata) ? 'embeddings' : 'llm',
    architecture: arch,
    name: stringKey(h, 'general.name') ?? '',
    quantization,
    bitsPerWeight: nParams > 0 ? Math.round(((tensorBytes * 8) / nParams) * 100) / 100 : null,
    nParams,
    paramsString: sizeLabel || paramsString(nParams),
    maxContextLength: key('context_length') ?? 0,
    ...templateCapabilities(template),
    shape: {
      nLayer: key('block_count') ?? 0,
      nEmbd,
      nHeadKv: key('attention.head_count_kv') ?? nHead,
      headDimK: key('attention.key_length') ?? headDim,
      headDimV: key('attention.value_length') ?? headDim,
      nVocab: h.arrays.get('tokenizer.ggml.tokens') ?? numberKey(h, `${arch}.vocab_size`) ?? 0,
      nFf: key('feed_forward_length') ?? 4 * nEmbd,
    },
  }
}

function commonestType(tensors: readonly { type: number; count: number }[]): string {
  const byType = new Map<number, number>()
  for (const t of tensors) byType.set(t.type, (byType.get(t.type) ?? 0) + t.count)
  let best = -1
  let most = -1
  for (const [type, n] of byType) if (n > most) [best, most] = [type, n]
  return GGML_TYPE_NAMES[best] ?? (best < 0 ? 'unknown' : `type ${best}`)
}

/** What a load is configured with, for the estimate (the defaults are Model.load's: lib/model.ts planContext). */
export interface PlannedContext {
  /** KV cells (all sequences together) */
  kvCells: number
  nSeqMax: number
  nUbatch: number
}

/**
 * Bytes a load is expected to hold before llama.cpp reports them: the weights as stored, an F16 KV cache of the
 * planned size, and compute buffers (the logits of one output per sequence plus activations of one micro-batch,
 * with room for the graph's intermediates). Generous rather than tight: it only decides whether to make room.
 */
export function estimateLoadBytes(info: ModelInfo, tensorBytes: number, plan: PlannedContext): number {
  const s = info.shape
  const kv = s.nLayer * plan.kvCells * s.nHeadKv * (s.headDimK + s.headDimV) * 2
  const logits = s.nVocab * plan.nSeqMax * 4
  const activations = plan.nUbatch * (s.nEmbd * 8 + s.nFf * 2) * 4
  return tensorBytes + (info.type === 'embeddings' ? 0 : kv) + logits + activations + 16 * 2 ** 20
}

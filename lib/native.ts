// The one place that loads hearth.node and types it. Prebuilt addons (prebuilds/) come first, then the
// local source build (build/Release); when none loads, the error lists every path tried and why.
// HEARTH_ADDON=path loads exactly that file instead (the sanitizer build of scripts/test-asan.mjs).
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Options for loading weights (native `loadModel`). */
export interface NativeModelOptions {
  /** layers to offload to the GPU; -1 = all (only meaningful in a GPU build) */
  gpuLayers?: number
  useExtraBuffers?: boolean
}

export interface NativeModelFacts {
  architecture: string
  name: string
  description: string
  nParams: number
  sizeBytes: number
  nCtxTrain: number
  nEmbd: number
  nLayer: number
  nHead: number
  nHeadKv: number
  nVocab: number
  /** -1 when the model has no such token */
  bos: number
  eos: number
  eot: number
  addBos: boolean
  addEos: boolean
  hasEncoder: boolean
  isRecurrent: boolean
  chatTemplate: string | null
  /** every scalar GGUF metadata key, as text */
  metadata: Record<string, string>
}

export interface NativeModel {
  facts(): NativeModelFacts
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array
  detokenize(tokens: Int32Array, removeSpecial: boolean, unparseSpecial: boolean): string
  /** every token's bytes: token t is bytes[offsets[t] .. offsets[t + 1]) */
  tokenPieces(special: boolean): { bytes: Uint8Array; offsets: Uint32Array }
  eogTokens(): Int32Array
  /** throws `invalid_grammar` (with llama.cpp's reason) when the GBNF does not parse */
  checkGrammar(gbnf: string): void
  /** throws `model_in_use` while contexts made from it are alive */
  dispose(): void
}

export interface NativeContextOptions {
  nCtx?: number
  nSeqMax?: number
  nBatch?: number
  nUbatch?: number
  threads?: number
  threadsBatch?: number
  kvUnified?: boolean
  flashAttention?: 'auto' | 'on' | 'off'
}

export interface NativeContextFacts {
  nCtx: number
  nCtxSeq: number
  nBatch: number
  nUbatch: number
  nSeqMax: number
  nThreads: number
  nThreadsBatch: number
}

/** Sampling for one sequence, already validated by lib/params.ts. */
export interface NativeSamplerParams {
  temperature: number
  topK: number
  topP: number
  minP: number
  repeatPenalty: number
  repeatLastN: number
  presencePenalty: number
  frequencyPenalty: number
  seed: number
  logprobs: boolean
  topLogprobs: number
  grammar?: string
  /** [token, bias, token, bias, ...] */
  logitBias?: Float32Array
}

/** Per sampled entry of a step: how sampling went for that sequence (see `NativeStepResult.status`). */
export const SampleStatus = {
  /** the token was sampled and accepted into the sequence's sampler chain */
  ok: 0,
  /** the constraints (grammar, logit bias, ignore_eos) leave no candidate; nothing was accepted */
  none: 1,
  /** llama.cpp failed while sampling or accepting; `errors[k]` says why */
  error: 2,
} as const
export type SampleStatus = (typeof SampleStatus)[keyof typeof SampleStatus]

/**
 * One step's samples. Sampling fails per sequence, never for the batch: entry k with status 1 (none) means the
 * sequence cannot continue (e.g. its grammar is complete and only end-of-generation is allowed, which ignore_eos
 * bans): end it normally, finish "stop". Status 2 (error) fails that sequence only; its sampler chain's state is
 * unspecified, so set a new sampler before the slot is used again. For both, tokens[k] is -1 and nothing was
 * accepted. Only a failure of llama_decode itself rejects the whole step.
 */
export interface NativeStepResult {
  /** one sampled token per entry of sampleAt, in the same order; -1 where status is not 0 */
  tokens: Int32Array
  /** per entry: 0 ok, 1 nothing allowed, 2 error (SampleStatus) */
  status: Int32Array
  /** per entry: why sampling failed where status is 2, '' otherwise */
  errors: string[]
  /** log-probability of each sampled token (NaN where not requested) */
  logprobs: Float32Array
  /** alternatives per sampled token: topIds/topLogprobs hold nTop entries per token */
  nTop: number
  topIds: Int32Array
  topLogprobs: Float32Array
  decodeUs: number
  sampleUs: number
}

export interface NativeContext {
  facts(): NativeContextFacts
  setSampler(seq: number, params: NativeSamplerParams | null, promptTokens?: Int32Array): void
  seqRemove(seq: number, p0?: number, p1?: number): boolean
  seqCopy(src: number, dst: number, p0?: number, p1?: number): void
  seqRange(seq: number): [number, number]
  clear(): void
  /** One decode step for the whole batch, sampling at most one position per sequence; every other method throws
   * `context_busy` until it settles. */
  step(tokens: Int32Array, positions: Int32Array, seqIds: Int32Array, sampleAt: Int32Array): Promise<NativeStepResult>
  dispose(): void
}

export interface NativeEmbedderOptions {
  nCtx?: number
  nSeqMax?: number
  threads?: number
  pooling?: 'mean' | 'cls' | 'last'
}

export interface NativeEmbedder {
  facts(): { nCtx: number; nSeqMax: number; nEmbd: number; pooling: string }
  /** input i is tokens[offsets[i] .. offsets[i + 1]); resolves to nInputs * nEmbd unit vectors */
  embed(tokens: Int32Array, offsets: Int32Array): Promise<Float32Array>
  dispose(): void
}

export interface NativeAddon {
  loadModel(path: string, options: NativeModelOptions, onProgress?: (progress: number) => void): Promise<NativeModel>
  createContext(model: NativeModel, options: NativeContextOptions): Promise<NativeContext>
  createEmbedder(model: NativeModel, options: NativeEmbedderOptions): Promise<NativeEmbedder>
  quantize(input: string, output: string, type: 'f16' | 'q8_0' | 'q4_0' | 'q4_k_m', threads?: number): Promise<void>
  /** 0 debug, 1 info, 2 warn, 3 error, 4 none (default) */
  setLogLevel(level: number): void
  systemInfo(): { llama: string; gpuOffload: boolean; mmap: boolean; maxParallelSequences: number }
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url)
  const tried: string[] = []
  const candidates: string[] = []
  const override = process.env.HEARTH_ADDON
  if (override) {
    candidates.push(resolve(override))
  } else {
    try {
      candidates.push(require('node-gyp-build').resolve(packageRoot) as string)
    } catch (err) {
      tried.push(`prebuilds/ and build/: ${(err as Error).message.split('\n')[0]}`)
    }
    const local = join(packageRoot, 'build', 'Release', 'hearth.node')
    if (!candidates.includes(local) && existsSync(local)) candidates.push(local)
  }
  for (const path of candidates) {
    try {
      const addon = require(path) as NativeAddon
      const level = process.env.HEARTH_LOG_LEVEL
      if (level !== undefined) addon.setLogLevel(Number(level))
      return addon
    } catch (err) {
      tried.push(`${path}: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  throw new Error(`hearth: no native addon loads on ${process.platform}-${process.arch} (run \`npm install\` to build it). Tried:\n  ${tried.join('\n  ')}`)
}

export const native: NativeAddon = loadAddon()

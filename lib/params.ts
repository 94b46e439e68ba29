// Sampling parameters: one validated type with defaults. The server maps OpenAI/LM Studio fields onto
// `SamplingInput`; `samplingParams()` checks every value and names the wire parameter (snake_case) at fault.
import { invalidParam } from './errors.js'
import type { NativeSamplerParams } from './native.js'

export interface SamplingParams {
  /** 0 = greedy */
  temperature: number
  /** 0 = off */
  topK: number
  /** 1 = off */
  topP: number
  /** 0 = off */
  minP: number
  /** tokens to generate at most; null = until the context is full */
  maxTokens: number | null
  /** generation ends before any of these strings, which never appear in the output */
  stop: string[]
  presencePenalty: number
  frequencyPenalty: number
  /** 1 = off */
  repeatPenalty: number
  /** how many recent tokens the penalties look at; -1 = the whole context */
  repeatLastN: number
  /** token id -> bias added to its logit; -100 bans a token, +100 forces it */
  logitBias: Map<number, number>
  /** a seeded request gives the same tokens whatever else runs; null = random */
  seed: number | null
  /** report the chosen token's log-probability */
  logprobs: boolean
  /** alternatives to report per token, 0..20 */
  topLogprobs: number
  /** GBNF grammar the output must follow; null = free text */
  grammar: string | null
  /** keep generating past end-of-generation tokens */
  ignoreEos: boolean
}

/** What callers pass: any subset; null or undefined means the default. */
export type SamplingInput = {
  [K in Exclude<keyof SamplingParams, 'logitBias' | 'stop'>]?: SamplingParams[K] | null
} & {
  logitBias?: Map<number, number> | Record<string, number> | null
  stop?: string | string[] | null
}

export const defaultSampling: Readonly<SamplingParams> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  maxTokens: null,
  stop: [],
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatPenalty: 1,
  repeatLastN: 64,
  logitBias: new Map<number, number>(),
  seed: null,
  logprobs: false,
  topLogprobs: 0,
  grammar: null,
  ignoreEos: false,
})

const MAX_STOPS = 16

function wire(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())
}

function num(name: string, v: unknown, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidParam(wire(name), `${wire(name)} must be a number`)
  if (integer && !Number.isInteger(v)) throw invalidParam(wire(name), `${wire(name)} must be an integer`)
  if (v < min || v > max) throw invalidParam(wire(name), `${wire(name)} must be between ${min} and ${max}, got ${v}`)
  return v
}

/** Validates `input` over the defaults. Throws HearthError(invalid_parameter) naming the wire parameter. */
export function samplingParams(input: SamplingInput = {}): SamplingParams {
  const p: SamplingParams = { ...defaultSampling, stop: [], logitBias: new Map() }
  const given = <K extends keyof SamplingInput>(k: K): boolean => input[k] !== undefined && input[k] !== null
  if (given('temperature')) p.temperature = num('temperature', input.temperature, 0, 2)
  if (given('topK')) p.topK = num('topK', input.topK, 0, 1e9, true)
  if (given('topP')) p.topP = num('topP', input.topP, 0, 1)
  if (given('minP')) p.minP = num('minP', input.minP, 0, 1)
  if (given('maxTokens')) p.maxTokens = num('maxTokens', input.maxTokens, 0, 1e9, true)
  if (given('presencePenalty')) p.presencePenalty = num('presencePenalty', input.presencePenalty, -2, 2)
  if (given('frequencyPenalty')) p.frequencyPenalty = num('frequencyPenalty', input.frequencyPenalty, -2, 2)
  if (given('repeatPenalty')) p.repeatPenalty = num('repeatPenalty', input.repeatPenalty, 0.01, 10)
  if (given('repeatLastN')) p.repeatLastN = num('repeatLastN', input.repeatLastN, -1, 1e9, true)
  if (given('seed')) p.seed = num('seed', input.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true)
  if (given('topLogprobs')) p.topLogprobs = num('topLogprobs', input.topLogprobs, 0, 20, true)
  if (given('logprobs')) {
    if (typeof input.logprobs !== 'boolean') throw invalidParam('logprobs', 'logprobs must be a boolean')
    p.logprobs = input.logprobs
  }
  if (given('ignoreEos')) {
    if (typeof input.ignoreEos !== 'boolean') throw invalidParam('ignore_eos', 'ignore_eos must be a boolean')
    p.ignoreEos = input.ignoreEos
  }
  if (given('grammar')) {
    if (typeof input.grammar !== 'string') throw invalidParam('grammar', 'grammar must be a string')
    p.grammar = input.grammar
  }
  if (given('stop')) {
    const stops = typeof input.stop === 'string' ? [input.stop] : input.stop
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string')) {
      throw invalidParam('stop', 'stop must be a string or an array of strings')
    }
    if (stops.length > MAX_STOPS) throw invalidParam('stop', `stop takes at most ${MAX_STOPS} strings`)
    p.stop = stops.filter((s) => s.length > 0)
  }
  if (given('logitBias')) {
    const bias = input.logitBias
    const entries = bias instanceof Map ? [...bias.entries()] : typeof bias === 'object' ? Object.entries(bias as object) : null
    if (!entries) throw invalidParam('logit_bias', 'logit_bias must map token ids to numbers')
    for (const [key, value] of entries) {
      const token = typeof key === 'number' ? key : /^\d+$/.test(key) ? Number(key) : NaN
      if (!Number.isInteger(token)) throw invalidParam('logit_bias', `logit_bias key ${JSON.stringify(key)} is not a token id`)
      if (typeof value !== 'number' || !Number.isFinite(value) || value < -100 || value > 100) {
        throw invalidParam('logit_bias', `logit_bias for token ${token} must be a number between -100 and 100`)
      }
      p.logitBias.set(token, value)
    }
  }
  return p
}

/** A seed for requests that give none, so every sequence still has its own RNG. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0xffffffff)
}

/** The native sampler's form of `p` (with a chat format's constraints); `eog` tokens are banned when `ignoreEos` is set. */
export function toNativeSampler(p: SamplingParams, eog: Int32Array, seed: number, chat?: NativeSamplerParams['chat']): NativeSamplerParams {
  const bias = new Map(p.logitBias)
  if (p.ignoreEos) for (const t of eog) bias.set(t, -Infinity)
  const flat = new Float32Array(bias.size * 2)
  let i = 0
  for (const [token, b] of bias) {
    flat[i++] = token
    flat[i++] = b
  }
  return {
    temperature: p.temperature,
    topK: p.topK,
    topP: p.topP,
    minP: p.minP,
    repeatPenalty: p.repeatPenalty,
    repeatLastN: p.repeatLastN,
    presencePenalty: p.presencePenalty,
    frequencyPenalty: p.frequencyPenalty,
    seed: seed >>> 0,
    logprobs: p.logprobs,
    topLogprobs: p.topLogprobs,
    ...(p.grammar ? { grammar: p.grammar } : {}),
    ...(flat.length ? { logitBias: flat } : {}),
    ...(chat ? { chat } : {}),
  }
}

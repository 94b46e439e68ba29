// Pieces shared by the OpenAI endpoints: ids, sampling fields to lib parameters, usage, finish reasons,
// and running n sequences for one request with cancellation tied to the client.
import { randomBytes } from 'node:crypto'
import { HearthError, invalidParam } from '../lib/errors.js'
import type { Model } from '../lib/model.js'
import { samplingParams, type SamplingInput, type SamplingParams } from '../lib/params.js'
import type { Sequence, SequenceChunk, SequenceResult, TokenInfo } from '../lib/sequence.js'
import type { Reply, SseWriter } from './http.js'
import type { ServerState } from './state.js'

export const SYSTEM_FINGERPRINT = 'hearth'
export const MAX_CHOICES = 16

export function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

/** The sampling fields every generation endpoint shares, in OpenAI/llama.cpp names. */
export interface WireSampling {
  temperature?: number | null
  top_p?: number | null
  top_k?: number | null
  min_p?: number | null
  presence_penalty?: number | null
  frequency_penalty?: number | null
  repeat_penalty?: number | null
  repeat_last_n?: number | null
  logit_bias?: Record<string, number> | null
  seed?: number | null
  ignore_eos?: boolean | null
  grammar?: string | null
}

export function toSampling(body: WireSampling, extra: SamplingInput): SamplingParams {
  const input: SamplingInput = {
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    presencePenalty: body.presence_penalty,
    frequencyPenalty: body.frequency_penalty,
    repeatPenalty: body.repeat_penalty,
    repeatLastN: body.repeat_last_n,
    logitBias: body.logit_bias,
    seed: body.seed,
    ignoreEos: body.ignore_eos,
    grammar: body.grammar,
    ...extra,
  }
  return samplingParams(input)
}

/**
 * Tool calls are not parsed out of model output yet, so a request that demands one cannot be honoured:
 * `tool_choice` "required" or a named function is refused rather than silently ignored.
 */
export function checkToolChoice(toolChoice: unknown): void {
  if (toolChoice === undefined || toolChoice === null || toolChoice === 'auto' || toolChoice === 'none') return
  throw new HearthError('unsupported_parameter', 'tool_choice other than "auto" or "none" is not supported yet: tool calls are not parsed from model output', 'tool_choice')
}

export function choiceCount(n: number | null | undefined): number {
  if (n === undefined || n === null) return 1
  if (n < 1 || n > MAX_CHOICES) throw invalidParam('n', `n must be between 1 and ${MAX_CHOICES}`)
  return n
}

/** OpenAI's finish_reason for a sequence's end; errors are not finish reasons. */
export function finishReason(r: SequenceResult): 'stop' | 'length' {
  return r.finishReason === 'length' ? 'length' : 'stop'
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
  completion_tokens_details: { reasoning_tokens: number }
}

/** Usage for one request's sequences: the shared prompt counts once. */
export function usage(results: SequenceResult[], promptTokens: number): Usage {
  const completion = results.reduce((s, r) => s + r.completionTokens, 0)
  const cached = Math.min(promptTokens, results.reduce((s, r) => s + r.cachedTokens, 0))
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    prompt_tokens_details: { cached_tokens: cached },
    completion_tokens_details: { reasoning_tokens: 0 },
  }
}

export interface RunCallbacks {
  /** inside the decode step, synchronously: write frames, don't await */
  chunk(index: number, chunk: SequenceChunk): void
  /** one sequence ended (not when cancelled) */
  end?(index: number, result: SequenceResult): void
}

/**
 * Runs one sequence per prompt and choice (seeded choices get seed + i), tied to the client: when it goes
 * away every sequence is cancelled at once. Admission errors (400/429/503) are thrown synchronously, before
 * anything is written, so they keep their HTTP status even for streams. The promise resolves with the
 * results in order, or rejects with the first error during generation.
 */
export function runSequences(
  state: ServerState,
  model: Model,
  reply: Reply,
  prompts: Int32Array[],
  params: SamplingParams,
  n: number,
  callbacks: RunCallbacks,
): Promise<SequenceResult[]> {
  const seqs: Sequence[] = []
  try {
    for (const prompt of prompts) {
      for (let i = 0; i < n; i++) {
        const p = params.seed !== null && i > 0 ? { ...params, seed: params.seed + i } : params
        seqs.push(model.submit(prompt, p))
      }
    }
  } catch (err) {
    for (const s of seqs) s.cancel()
    throw err
  } finally {
    reply.arrived()
  }
  reply.onAbort(() => seqs.forEach((s) => s.cancel()))
  const startedAt = reply.startedAt
  return Promise.all(
    seqs.map(
      (seq, index) =>
        new Promise<SequenceResult>((resolve, reject) => {
          let last = 0
          seq.listen({
            chunk(c) {
              const now = performance.now()
              if (c.token) {
                if (last === 0) state.metrics.ttft.observe((now - startedAt) / 1000)
                else state.metrics.tokenGap.observe((now - last) / 1000)
                last = now
              }
              callbacks.chunk(index, c)
            },
            end(r) {
              state.metrics.promptTokens += r.promptTokens
              state.metrics.cachedTokens += r.cachedTokens
              state.metrics.generatedTokens += r.completionTokens
              if (r.error) return reject(r.error)
              if (r.finishReason === 'cancelled') return reject(new HearthError('internal_error', 'cancelled'))
              callbacks.end?.(index, r)
              resolve(r)
            },
          })
        }),
    ),
  ).catch((err: unknown) => {
    for (const s of seqs) s.cancel()
    throw err
  })
}

const utf8 = new TextDecoder()

export interface TokenLogprobEntry {
  token: string
  logprob: number
  bytes: number[]
}

/** A token as OpenAI's logprobs show it: its text and its raw bytes. */
export function tokenEntry(model: Model, id: number, logprob: number): TokenLogprobEntry {
  const bytes = model.pieces.bytes(id)
  return { token: utf8.decode(bytes), logprob, bytes: [...bytes] }
}

/** Chat-style logprobs content for sampled tokens. */
export function chatLogprobContent(model: Model, tokens: TokenInfo[]): (TokenLogprobEntry & { top_logprobs: TokenLogprobEntry[] })[] {
  return tokens.map((t) => ({
    ...tokenEntry(model, t.id, t.logprob ?? 0),
    top_logprobs: t.top.map((a) => tokenEntry(model, a.id, a.logprob)),
  }))
}

export function errorObject(err: unknown): { message: string; type: string; param: string | null; code: string } {
  const e = err instanceof HearthError ? err : new HearthError('internal_error', err instanceof Error ? err.message : String(err))
  return { message: e.message, type: e.type, param: e.param, code: e.code }
}

/**
 * The tail every chat/completions stream shares: waits for the sequences, sends the include_usage chunk
 * (choices [] and the usage) when asked for, an error chunk if generation failed, then [DONE].
 */
export async function finishStream(
  sse: SseWriter,
  reply: Reply,
  work: Promise<SequenceResult[]>,
  promptTokens: number,
  usageChunk: ((u: Usage) => unknown) | null,
): Promise<void> {
  try {
    const u = usage(await work, promptTokens)
    reply.completionTokens = u.completion_tokens
    if (usageChunk) sse.send(usageChunk(u))
  } catch (err) {
    if (reply.open) sse.send({ error: errorObject(err) })
  }
  sse.send('[DONE]')
  sse.end()
}

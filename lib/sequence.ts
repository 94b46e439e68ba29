// Sequence: one generation request as its consumer sees it. The scheduler feeds it chunks once per decode
// step; the consumer either listens (callbacks inside the scheduler's step, as the server does) or
// iterates (`for await (const piece of seq)` yields text pieces; leaving the loop cancels it).
import type { HearthError } from './errors.js'
import type { SamplingParams } from './params.js'

/** stop: a stop string or end-of-generation token; length: max tokens or the context; cancelled: abort. */
export type FinishReason = 'stop' | 'length' | 'eos' | 'cancelled' | 'error'

export interface TokenLogprob {
  id: number
  logprob: number
}

export interface TokenInfo {
  id: number
  /** null unless logprobs were requested */
  logprob: number | null
  /** the most likely alternatives, most likely first; empty unless topLogprobs > 0 */
  top: TokenLogprob[]
}

export interface SequenceChunk {
  /** text released by this step (may be empty while a stop string or a UTF-8 character is pending) */
  text: string
  /** the token sampled in this step */
  token: TokenInfo | null
}

export interface SequenceTimings {
  /** waiting for a slot */
  queuedMs: number
  /** from admission to the first sampled token (prompt processing) */
  promptMs: number
  /** from the first to the last sampled token */
  generateMs: number
}

export interface SequenceResult {
  finishReason: FinishReason
  /** the stop string that ended generation, if one did */
  stopString: string | null
  promptTokens: number
  /** prompt tokens whose KV cells came from the prompt cache */
  cachedTokens: number
  completionTokens: number
  /** every sampled token, in order */
  tokens: number[]
  error: HearthError | null
  timings: SequenceTimings
}

export interface SequenceListener {
  /** Called synchronously inside the scheduler's step: write, don't await. */
  chunk(chunk: SequenceChunk): void
  end(result: SequenceResult): void
}

export class Sequence implements AsyncIterable<string> {
  readonly prompt: Int32Array
  readonly params: SamplingParams
  /** the RNG seed this sequence samples with (given or drawn) */
  readonly seed: number
  readonly result: Promise<SequenceResult>

  #listener: SequenceListener | null = null
  #buffer: SequenceChunk[] = []
  #wake: (() => void) | null = null
  #final: SequenceResult | null = null
  #resolve!: (r: SequenceResult) => void
  #onCancel: (seq: Sequence) => void

  /** @internal the scheduler creates sequences */
  constructor(prompt: Int32Array, params: SamplingParams, seed: number, onCancel: (seq: Sequence) => void) {
    this.prompt = prompt
    this.params = params
    this.seed = seed
    this.#onCancel = onCancel
    this.result = new Promise((resolve) => (this.#resolve = resolve))
  }

  get done(): boolean {
    return this.#final !== null
  }

  /** Stops generation; the slot is freed before the next decode step. Safe to call at any time. */
  cancel(): void {
    if (this.#final === null) this.#onCancel(this)
  }

  /** Delivers chunks and the end through callbacks instead of iteration. Chunks already buffered are replayed. */
  listen(listener: SequenceListener): void {
    this.#listener = listener
    for (const c of this.#buffer.splice(0)) listener.chunk(c)
    if (this.#final) listener.end(this.#final)
  }

  /** @internal */
  emit(chunk: SequenceChunk): void {
    if (this.#final) return
    if (this.#listener) {
      this.#listener.chunk(chunk)
      return
    }
    this.#buffer.push(chunk)
    this.#wake?.()
  }

  /** @internal */
  end(result: SequenceResult): void {
    if (this.#final) return
    this.#final = result
    this.#resolve(result)
    if (this.#listener) this.#listener.end(result)
    else this.#wake?.()
  }

  /** Every chunk (text and token details) until the end. */
  async *chunks(): AsyncGenerator<SequenceChunk, SequenceResult> {
    try {
      for (;;) {
        const next = this.#buffer.shift()
        if (next) {
          yield next
          continue
        }
        if (this.#final) return this.#final
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = null
      }
    } finally {
      this.cancel() // leaving the loop early frees the slot; a no-op once the sequence ended
    }
  }

  /** Text pieces, never splitting a UTF-8 character and never containing any part of a stop string. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string, SequenceResult> {
    const it = this.chunks()
    try {
      for (;;) {
        const r = await it.next()
        if (r.done) return r.value
        if (r.value.text) yield r.value.text
      }
    } finally {
      await it.return(undefined as never)
    }
  }
}

// Sequence: one generation as its consumer sees it, and the rendering of its tokens into text (UTF-8 kept whole,
// stop strings held back and never emitted). The scheduler hands it each sampled token inside the decode step and
// ends it once; the consumer either listens (callbacks inside the step, as the server does) or iterates
// (`for await (const piece of seq)` yields text pieces; leaving the loop cancels it).
import type { HearthError } from './errors.js'
import type { SamplingParams } from './params.js'
import { StopMatcher, TokenText, type PieceSource } from './token-text.js'

/** stop: a stop string; eos: an end-of-generation token; length: max tokens or the context; cancelled: abort. */
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
  /** the token sampled in this step; null for the text released at the end */
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

/** What the scheduler knows about a sequence's run when it ends it. */
export interface SequenceRun {
  cachedTokens: number
  queuedMs: number
  admittedAt: number
  firstTokenAt: number
}

export class Sequence implements AsyncIterable<string> {
  readonly prompt: Int32Array
  readonly params: SamplingParams
  /** the RNG seed this sequence samples with (given or drawn) */
  readonly seed: number
  readonly result: Promise<SequenceResult>
  /** every sampled token, in order */
  readonly tokens: number[] = []

  readonly #text: TokenText
  readonly #stops: StopMatcher
  #listener: SequenceListener | null = null
  #buffer: SequenceChunk[] = []
  #wake: (() => void) | null = null
  #final: SequenceResult | null = null
  #resolve!: (r: SequenceResult) => void
  readonly #onCancel: (seq: Sequence) => void

  /** @internal the scheduler creates sequences */
  constructor(prompt: Int32Array, params: SamplingParams, seed: number, pieces: PieceSource, onCancel: (seq: Sequence) => void) {
    this.prompt = prompt
    this.params = params
    this.seed = seed
    this.#text = new TokenText(pieces)
    this.#stops = new StopMatcher(params.stop)
    this.#onCancel = onCancel
    this.result = new Promise((resolve) => (this.#resolve = resolve))
  }

  get done(): boolean {
    return this.#final !== null
  }

  /** A stop string was found in the output: the scheduler ends the sequence with "stop". */
  get stopped(): boolean {
    return this.#stops.stopped !== null
  }

  /** Stops generation; the slot is freed before the next decode step. Safe to call at any time. */
  cancel(): void {
    if (this.#final === null) this.#onCancel(this)
  }

  /** Delivers chunks and the end through callbacks instead of iteration. Chunks already buffered are replayed. */
  listen(listener: SequenceListener): void {
    this.#listener = listener
    for (const c of this.#buffer.splice(0)) this.#deliver(c)
    if (this.#final) listener.end(this.#final)
  }

  /**
   * @internal A sampled token that is part of the output: its text (what can be released now) goes to the
   * consumer. Returns true when a stop string has now been found.
   */
  accept(token: number, info: TokenInfo): boolean {
    this.tokens.push(token)
    this.#emit({ text: this.#stops.push(this.#text.push(token)), token: info })
    return this.stopped
  }

  /** @internal A sampled token that ends generation without being output (end of generation). */
  acceptEnd(token: number): void {
    this.tokens.push(token)
  }

  /**
   * @internal The one way a sequence ends. Text still held back is released (an unfinished UTF-8 character is
   * dropped; text that turned out not to be a stop string is emitted), unless it was cancelled or failed.
   */
  finish(reason: FinishReason, run: SequenceRun, error: HearthError | null = null): void {
    if (this.#final) return
    const finishReason = this.stopped ? 'stop' : reason
    if (reason !== 'cancelled' && reason !== 'error') {
      const rest = this.#stops.push(this.#text.flush())
      const text = this.stopped ? rest : rest + this.#stops.flush()
      if (text) this.#emit({ text, token: null })
    }
    const now = performance.now()
    const first = run.firstTokenAt
    this.#final = {
      finishReason,
      stopString: this.#stops.stopped,
      promptTokens: this.prompt.length,
      cachedTokens: run.cachedTokens,
      completionTokens: this.tokens.length,
      tokens: this.tokens.slice(),
      error,
      timings: {
        queuedMs: run.queuedMs,
        promptMs: first ? first - run.admittedAt : now - run.admittedAt,
        generateMs: first ? now - first : 0,
      },
    }
    this.#resolve(this.#final)
    if (this.#listener) this.#callListener(() => this.#listener!.end(this.#final!))
    else this.#wake?.()
  }

  #emit(chunk: SequenceChunk): void {
    if (this.#listener) this.#deliver(chunk)
    else {
      this.#buffer.push(chunk)
      this.#wake?.()
    }
  }

  #deliver(chunk: SequenceChunk): void {
    this.#callListener(() => this.#listener!.chunk(chunk))
  }

  // A listener that throws must not take the scheduler's step down with it: its sequence is cancelled instead.
  #callListener(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      process.emitWarning(`hearth: a sequence listener threw; the sequence is cancelled: ${(err as Error)?.stack ?? String(err)}`)
      queueMicrotask(() => this.cancel())
    }
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

// The embedding queue: every request for one embedder is split into chunks of one native call each, and the
// chunks interleave the requests round-robin, so a one-word request waits for about one chunk per request ahead of
// it rather than for all of their inputs. A request whose signal aborts is dropped at once: its remaining inputs
// never run, and at most the chunk in flight is wasted. The queue is bounded by inputs not yet embedded.
// Inputs of several requests share a chunk (one batch), which may change a vector in its last float digits
// compared with the same input embedded alone.
import { HearthError, invalidParam, toHearthError } from './errors.js'
import type { NativeEmbedder } from './native.js'

/** What the queue uses of an embedder (a fake in the tests without a model). */
export interface QueueEmbedder {
  facts: NativeEmbedder['facts']
  embed: NativeEmbedder['embed']
  dispose: NativeEmbedder['dispose']
}

export interface EmbeddingQueueOptions {
  /** token ids must be below this (checked here: one bad input must not fail the others in its chunk) */
  nVocab: number
  /** inputs admitted and not yet embedded, all requests together; past it submit() throws queue_full. Default 8192 */
  maxQueue?: number
}

export interface EmbeddingQueueStats {
  /** requests admitted and not yet settled */
  requests: number
  /** their inputs not yet embedded, the chunk in flight included */
  inputs: number
  /** native embed() calls made: one llama_decode each */
  chunks: number
  /** requests dropped because their signal aborted */
  aborted: number
}

export const defaultEmbeddingQueue = 8192

interface Job {
  tokens: Int32Array[]
  /** nInputs × nEmbd, filled as chunks come back */
  out: Float32Array
  /** the first input not yet handed to a chunk */
  next: number
  /** inputs not yet embedded */
  pending: number
  settled: boolean
  resolve: (vectors: Float32Array[]) => void
  reject: (err: unknown) => void
  signal: AbortSignal | undefined
  onAbort: () => void
}

interface Pick {
  job: Job
  index: number
}

export class EmbeddingQueue {
  readonly maxQueue: number
  /** a chunk holds at most this many tokens (the embedder's context: one physical batch) ... */
  readonly nCtx: number
  /** ... and this many inputs (the embedder's sequences) */
  readonly nSeqMax: number
  readonly nEmbd: number
  readonly #embedder: QueueEmbedder
  readonly #nVocab: number
  // requests with inputs not yet handed to a chunk, in turn order: the next chunk starts with the first
  #ring: Job[] = []
  // the request whose turn the chunk in flight is: back into the ring when the chunk ends, behind any request
  // that arrived meanwhile
  #turn: Job | null = null
  #inFlight = false
  #closed = false
  #onIdle: (() => void)[] = []
  #requests = 0
  #inputs = 0
  #chunks = 0
  #aborted = 0

  /** The queue owns `embedder` from here on: close() disposes it. */
  constructor(embedder: QueueEmbedder, options: EmbeddingQueueOptions) {
    const facts = embedder.facts()
    this.#embedder = embedder
    this.#nVocab = options.nVocab
    this.nCtx = facts.nCtx
    this.nSeqMax = facts.nSeqMax
    this.nEmbd = facts.nEmbd
    this.maxQueue = options.maxQueue ?? defaultEmbeddingQueue
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 1) throw invalidParam('maxEmbeddingQueue', 'maxEmbeddingQueue must be a positive integer')
  }

  /**
   * Queues one request; resolves to one unit vector per input, in input order (views of one buffer per request).
   * Throws at once: invalid_input / context_length_exceeded / invalid_token for an input the embedder cannot take,
   * invalid_parameter when the request alone has more inputs than the queue holds, queue_full when the inputs
   * already waiting leave no room for it, model_disposed after close(). Rejects with `signal.reason` when `signal`
   * aborts first, or with the native error of a chunk that fails.
   */
  submit(tokens: Int32Array[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (this.#closed) throw new HearthError('model_disposed', 'the model was disposed')
    if (tokens.length === 0) throw new HearthError('invalid_input', 'there are no inputs', 'input')
    tokens.forEach((t, i) => {
      if (t.length === 0) throw new HearthError('invalid_input', `input ${i} is empty`, 'input')
      if (t.length > this.nCtx) throw new HearthError('context_length_exceeded', `input ${i} has ${t.length} tokens; the embedding context holds ${this.nCtx}`, 'input')
      for (const id of t) {
        if (id < 0 || id >= this.#nVocab) throw new HearthError('invalid_token', `token id ${id} is outside the vocabulary (0..${this.#nVocab - 1})`, 'input')
      }
    })
    if (tokens.length > this.maxQueue) {
      throw invalidParam('input', `input has ${tokens.length} items; the embedding queue holds at most ${this.maxQueue}`)
    }
    if (this.#inputs + tokens.length > this.maxQueue) {
      throw new HearthError('queue_full', `the embedding queue is full (${this.#inputs} inputs waiting, at most ${this.maxQueue}); retry later`)
    }
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<Float32Array[]>((resolve, reject) => {
      const job: Job = {
        tokens,
        out: new Float32Array(tokens.length * this.nEmbd),
        next: 0,
        pending: tokens.length,
        settled: false,
        resolve,
        reject,
        signal,
        onAbort: () => {
          if (job.settled) return
          this.#aborted++
          this.#reject(job, signal!.reason)
        },
      }
      signal?.addEventListener('abort', job.onAbort, { once: true })
      this.#requests++
      this.#inputs += tokens.length
      this.#ring.push(job)
      this.#pump()
    })
  }

  stats(): EmbeddingQueueStats {
    return { requests: this.#requests, inputs: this.#inputs, chunks: this.#chunks, aborted: this.#aborted }
  }

  /** Resolves when no request is admitted and no chunk is in flight. */
  idle(): Promise<void> {
    if (!this.#inFlight && this.#requests === 0) return Promise.resolve()
    return new Promise((resolve) => this.#onIdle.push(resolve))
  }

  /** Refuses new requests, lets the admitted ones finish (or abort), then disposes the embedder. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      if (this.#requests > 0 || this.#inFlight) await new Promise<void>((resolve) => this.#onIdle.push(resolve))
      this.#embedder.dispose()
    }
  }

  #pump(): void {
    if (this.#inFlight || this.#ring.length === 0) return
    const picks = this.#take()
    const offsets = new Int32Array(picks.length + 1)
    picks.forEach((p, k) => (offsets[k + 1] = offsets[k]! + p.job.tokens[p.index]!.length))
    const flat = new Int32Array(offsets[picks.length]!)
    picks.forEach((p, k) => flat.set(p.job.tokens[p.index]!, offsets[k]!))
    this.#inFlight = true
    this.#chunks++
    void this.#run(picks, flat, offsets)
  }

  async #run(picks: Pick[], flat: Int32Array, offsets: Int32Array): Promise<void> {
    try {
      const out = await this.#embedder.embed(flat, offsets)
      picks.forEach((p, k) => {
        const job = p.job
        if (job.settled) return // aborted while its chunk ran
        job.out.set(out.subarray(k * this.nEmbd, (k + 1) * this.nEmbd), p.index * this.nEmbd)
        job.pending--
        this.#inputs--
        if (job.pending === 0) this.#resolve(job)
      })
    } catch (err) {
      // the whole chunk failed: so does every request with an input in it
      const e = toHearthError(err)
      for (const p of picks) if (!p.job.settled) this.#reject(p.job, e)
    }
    const turn = this.#turn!
    if (!turn.settled && turn.next < turn.tokens.length) this.#ring.push(turn)
    this.#turn = null
    this.#inFlight = false
    this.#pump()
    if (!this.#inFlight && this.#requests === 0) for (const fn of this.#onIdle.splice(0)) fn()
  }

  // One chunk: it is the turn of the first request in the ring, which leaves the ring until the chunk ends. The
  // chunk takes one input from it and from each request behind it, round after round, until it holds nSeqMax
  // inputs or no request's next input fits its tokens. A request's inputs go in order, so a request alone is
  // chunked exactly as the native embedder packs one call. The first input always fits (each fits nCtx).
  #take(): Pick[] {
    const turn = this.#ring.shift()!
    const order = [turn, ...this.#ring]
    const picks: Pick[] = []
    let nTokens = 0
    for (let more = true; more; ) {
      more = false
      for (const job of order) {
        if (picks.length === this.nSeqMax) break
        if (job.next === job.tokens.length) continue
        const len = job.tokens[job.next]!.length
        if (nTokens + len > this.nCtx) continue
        picks.push({ job, index: job.next++ })
        nTokens += len
        more = true
      }
    }
    // requests with nothing left to hand out leave the ring; they still wait for their chunk
    this.#ring = this.#ring.filter((j) => j.next < j.tokens.length)
    this.#turn = turn
    return picks
  }

  #resolve(job: Job): void {
    this.#end(job)
    job.resolve(job.tokens.map((_, i) => job.out.subarray(i * this.nEmbd, (i + 1) * this.nEmbd)))
  }

  #reject(job: Job, err: unknown): void {
    this.#end(job)
    job.reject(err)
  }

  // a request leaves: its inputs stop counting against the queue and none of them is handed out again
  #end(job: Job): void {
    job.settled = true
    job.signal?.removeEventListener('abort', job.onAbort)
    this.#requests--
    this.#inputs -= job.pending
    const at = this.#ring.indexOf(job)
    if (at >= 0) this.#ring.splice(at, 1)
    if (!this.#inFlight && this.#requests === 0) for (const fn of this.#onIdle.splice(0)) fn()
  }
}

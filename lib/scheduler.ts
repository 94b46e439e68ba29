// Continuous batching over one context: the queue, the pipelined step loop, and sequences leaving the batch. The
// parts it is built from can be read and tested alone: `admission.ts` (placing queued requests into slots with
// their prompts' cells), `kv-cells.ts` (cell accounting), `prefix-plan.ts` (the prompt cache's decisions),
// `prompt-cache.ts` and `prompt-saver.ts` (saved prompts in host RAM), `batch.ts` (what one step decodes),
// `running.ts` and `sequence.ts` (a request in the batch, and its output as text). A sequence leaves the batch in
// exactly one place, `#leave()`.
import { Admission, type Queued } from './admission.js'
import { buildBatch, spanAt, type Batch } from './batch.js'
import { HearthError, toHearthError } from './errors.js'
import { KvCells } from './kv-cells.js'
import type { KvLayout } from './kv-layout.js'
import type { MediaSpan } from './media.js'
import { SampleStatus, type NativeContext, type NativeSamplerParams, type NativeSeqState, type NativeStepResult } from './native.js'
import { randomSeed, type SamplingParams } from './params.js'
import type { PromptCache, PromptCacheStats } from './prompt-cache.js'
import { PromptSaver } from './prompt-saver.js'
import { Running } from './running.js'
import { Sequence, type FinishReason, type TokenInfo } from './sequence.js'
import type { PieceSource, TokenPieces } from './token-text.js'

export interface SchedulerOptions {
  /** sequences decoded together (the context's nSeqMax) */
  nParallel: number
  /** requests that may wait for a slot; more get `queue_full` (429) */
  maxQueue: number
  /** tokens per decode step (at most the context's nBatch) */
  nBatch: number
  /** KV cells in the context (unified: shared by all sequences) */
  nCtx: number
  /** positions one sequence may use: prompt plus generated tokens */
  nCtxSeq: number
  /** reuse KV cells of earlier requests with the same prompt prefix */
  promptCache: boolean
  /** how the context's KV cache is laid out (its facts' kvUnified); default unified */
  kvLayout?: KvLayout
  /** where the cells of prompts that must give them up are kept, to be restored later; none by default */
  ramCache?: PromptCache<NativeSeqState> | null
}

export interface SchedulerStats {
  slots: number
  active: number
  queued: number
  usedCells: number
  /** cells promised to running requests and not yet used */
  reservedCells: number
  nCtx: number
  steps: number
  promptTokens: number
  cachedTokens: number
  generatedTokens: number
  kvLayout: KvLayout
  /** the host-RAM prompt cache, when there is one */
  ramCache: PromptCacheStats | null
}

export interface SubmitOptions {
  signal?: AbortSignal
  /** how tokens become text, when not the model's usual pieces (a chat format's preserved special tokens) */
  pieces?: PieceSource
  /** the chat format's constraints on the output (its grammar, triggers, thinking tags) for the sampler */
  chat?: ChatConstraint
  /** the prompt's media spans (lib/media.ts), in order; their positions hold pseudo-tokens */
  media?: readonly MediaSpan[]
}

/** A chat format's output constraints, as the native sampler takes them. */
export type ChatConstraint = NonNullable<NativeSamplerParams['chat']>

/** What the scheduler needs of a native context (a fake in the tests without a model). */
export type StepContext = Pick<NativeContext, 'step' | 'setSampler' | 'seqRemove' | 'seqCopy' | 'seqSave' | 'seqRestore'>


/** Gathering a burst of requests before the first step from idle: see #kick(). */
const GATHER_QUIET_MS = 1
const GATHER_MAX_MS = 10

/** A token booked from a settled step, rendered after the next step has started. */
interface Sampled {
  member: Running
  token: number
  info: TokenInfo
  /** how generation ends with this token, as far as tokens can tell (stop strings are found when rendering) */
  finish: FinishReason | null
}

interface StepOutcome {
  batch: Batch<Running>
  result: NativeStepResult | HearthError
}

/** What happens to a leaving sequence's cells. */
type Cleanup = 'keep' | 'drop-generated' | 'drop-all'

export class Scheduler {
  readonly #ctx: StepContext
  readonly #pieces: TokenPieces
  readonly #eog: Set<number>
  readonly #opts: SchedulerOptions
  readonly #kv: KvCells
  /** saves and restores of the host-RAM prompt cache, when there is one */
  readonly #saver: PromptSaver | null
  readonly #admission: Admission
  /** running sequences in admission order */
  #active: Running[] = []
  /** native cleanups of sequences that left while a step was in flight: run before the next step */
  #cleanups: (() => void)[] = []
  #running = false
  #lastSubmit = -Infinity
  /** a native step is in flight: slots and samplers may not change until it settles */
  #stepping = false
  #closed = false
  #idleWaiters: (() => void)[] = []
  /** requests announced by expectArrival() and not yet submitted (or given up) */
  #arriving = 0
  #stats = { steps: 0, promptTokens: 0, cachedTokens: 0, generatedTokens: 0 }

  constructor(ctx: StepContext, pieces: TokenPieces, eog: Int32Array, opts: SchedulerOptions) {
    this.#ctx = ctx
    this.#pieces = pieces
    this.#eog = new Set(eog)
    this.#opts = opts
    this.#kv = new KvCells(
      opts.nCtx,
      opts.nParallel,
      {
        remove: (slot, from) => void ctx.seqRemove(slot, from, -1),
        copy: (src, dst, n) => ctx.seqCopy(src, dst, 0, n),
      },
      opts.kvLayout ?? 'unified',
    )
    this.#saver = opts.promptCache && opts.ramCache ? new PromptSaver(ctx, this.#kv, opts.ramCache) : null
    this.#admission = new Admission({
      ctx, kv: this.#kv, saver: this.#saver, opts, eog, stats: this.#stats,
      active: () => this.#active,
      join: (m) => void this.#active.push(m),
    })
  }

  get options(): Readonly<SchedulerOptions> {
    return this.#opts
  }

  stats(): SchedulerStats {
    return {
      slots: this.#opts.nParallel,
      active: this.#active.length,
      queued: this.#admission.queue.length,
      usedCells: this.#kv.used,
      reservedCells: this.#kv.reserved,
      nCtx: this.#opts.nCtx,
      ...this.#stats,
      kvLayout: this.#kv.layout,
      ramCache: this.#saver?.ram.stats() ?? null,
    }
  }

  /**
   * Queues a generation. Throws HearthError: `context_length_exceeded` (400, param "prompt") when the prompt leaves
   * no room to generate, `queue_full` (429) or `kv_cache_full` (503) when it cannot wait. A max_tokens beyond the
   * room left in the context is not an error: generation stops with "length" when the context is full.
   */
  submit(prompt: Int32Array, params: SamplingParams, options: SubmitOptions = {}): Sequence {
    if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
    if (prompt.length === 0) throw new HearthError('invalid_input', 'the prompt is empty', 'prompt')
    const room = this.#opts.nCtxSeq - prompt.length
    if (room < 1) {
      throw new HearthError(
        'context_length_exceeded',
        `the prompt has ${prompt.length} tokens but the context holds ${this.#opts.nCtxSeq} per sequence ` +
          `(including at least one generated token); shorten the prompt`,
        'prompt',
      )
    }
    const budget = Math.min(params.maxTokens ?? room, room)
    const seq = new Sequence(prompt, params, params.seed ?? randomSeed(), options.pieces ?? this.#pieces, (s) => this.#cancel(s))
    if (budget === 0) {
      queueMicrotask(() => seq.finish('length', { cachedTokens: 0, queuedMs: 0, admittedAt: performance.now(), firstTokenAt: 0 }))
      return seq
    }
    const entry: Queued = { seq, budget, at: performance.now(), chat: options.chat, media: options.media?.length ? options.media : undefined }
    this.#lastSubmit = entry.at
    this.#admission.queue.push(entry)
    if (!this.#stepping) this.#admit()
    const waiting = this.#admission.stillWaiting()
    if (waiting.count > this.#opts.maxQueue && this.#admission.queue.at(-1) === entry) {
      this.#admission.queue.pop()
      if (waiting.slotFree) throw new HearthError('kv_cache_full', 'the KV cache cannot hold this request now and the wait queue is full; retry shortly')
      throw new HearthError('queue_full', `all ${this.#opts.nParallel} slots are busy and ${this.#opts.maxQueue} requests wait; retry shortly`)
    }
    options.signal?.addEventListener('abort', () => seq.cancel(), { once: true })
    if (options.signal?.aborted) seq.cancel()
    this.#kick()
    return seq
  }

  /** How many sequences one request may ever have in the scheduler at once (running plus waiting). */
  get capacity(): number {
    return this.#opts.nParallel + this.#opts.maxQueue
  }

  /**
   * Announces a request that has reached the server and will probably submit once its body is parsed and its
   * prompt rendered and tokenized; call the returned function when it has (or when it will not). The first step
   * from idle waits for announced requests (at most GATHER_MAX_MS), so clients that start together are prefilled
   * in one step even when their requests take a few milliseconds to prepare.
   */
  expectArrival(): () => void {
    this.#arriving++
    let done = false
    return () => {
      if (done) return
      done = true
      this.#arriving--
    }
  }

  /** Resolves when no step is in flight and nothing runs or waits (left sequences' cells are cleaned up by then). */
  idle(): Promise<void> {
    if (!this.#running && this.#active.length === 0 && this.#admission.queue.length === 0) {
      this.#runCleanups()
      return Promise.resolve()
    }
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  /** Stops taking requests and resolves when every admitted and queued request has ended; frees the RAM cache. */
  async close(): Promise<void> {
    this.#closed = true
    await this.idle()
    this.#saver?.ram.clear()
  }

  #kick(): void {
    if (this.#running) return
    this.#running = true
    // From idle, the first step waits for a burst of requests to finish arriving (while announced ones are still
    // being prepared and until none was submitted for GATHER_QUIET_MS, at most GATHER_MAX_MS), so clients that
    // start together are prefilled together rather than the first alone and the rest one long step later.
    const started = performance.now()
    const gathering = (now: number) => this.#arriving > 0 || now - this.#lastSubmit < GATHER_QUIET_MS
    const gather = () => {
      const now = performance.now()
      if (gathering(now) && now - started < GATHER_MAX_MS) setTimeout(gather, 1)
      else void this.#loop()
    }
    if (gathering(started)) setTimeout(gather, 1)
    else setImmediate(() => void this.#loop())
  }

  /**
   * The step loop, pipelined: when a step settles, its tokens are booked (cells, end of generation, limits), the
   * next step is started at once, and only then is text rendered and streamed out (stop strings, UTF-8,
   * listeners) while the native side decodes. A sequence that hits a stop string has already been put into that
   * next step; its extra token is discarded. Any throw fails the sequences it concerns, never the loop.
   */
  async #loop(): Promise<void> {
    try {
      let next = this.#startStep()
      for (;;) {
        const outcome = await next
        if (!outcome) break
        const { batch, result } = outcome
        let sampled: Sampled[] = []
        try {
          if (result instanceof HearthError) this.#failBatch(batch, result)
          else sampled = this.#advance(batch, result)
        } catch (err) {
          this.#failAll(err)
          sampled = []
        }
        next = this.#startStep()
        this.#render(sampled)
        // sequences that just ended may have let queued ones in
        next = next.then((o) => o ?? this.#startStep())
      }
    } finally {
      this.#running = false
      // sequences that only wait for media encodings are woken by the encodings (MediaSpan.encode's callback)
      if (this.#active.length > 0 && this.#active.every((m) => m.waiting)) return
      if (this.#admission.queue.length > 0 || this.#active.length > 0) this.#kick()
      else {
        this.#runCleanups()
        for (const resolve of this.#idleWaiters.splice(0)) resolve()
      }
    }
  }

  /**
   * Admits, runs the native work admission asked for (saves and restores of cached prompts, one at a time), then
   * builds and starts the next step; null when there is nothing to decode. Never rejects. Without native work to
   * wait for, the step starts before this returns, so rendering the last step overlaps the next.
   */
  async #startStep(): Promise<StepOutcome | null> {
    let batch: Batch<Running> | null
    try {
      const tried = new Set<number>()
      for (;;) {
        this.#admit()
        this.#admission.resolveWaits()
        const op = this.#admission.nextOp(tried, this.#want())
        if (!op) break
        this.#stepping = true
        try {
          await op()
        } finally {
          this.#stepping = false
        }
      }
      batch = this.#build()
    } catch (err) {
      this.#failAll(err)
      return null
    }
    if (!batch) return null
    this.#stepping = true
    let step: Promise<NativeStepResult>
    try {
      step =
        batch.media.length > 0
          ? this.#ctx.step(batch.tokens, batch.positions, batch.seqIds, batch.sampleAt, batch.media)
          : this.#ctx.step(batch.tokens, batch.positions, batch.seqIds, batch.sampleAt)
    } catch (err) {
      step = Promise.reject(err)
    }
    const b = batch
    return step.then(
      (result) => {
        this.#stepping = false
        this.#stats.steps++
        return { batch: b, result }
      },
      (err: unknown) => {
        this.#stepping = false
        return { batch: b, result: toHearthError(err) }
      },
    )
  }

  #build(): Batch<Running> | null {
    this.#prepareMedia()
    if (this.#active.length === 0) return null
    // the cells this step could use; reservations guarantee them, idle caches give way (least recently used first)
    this.#kv.makeRoom(this.#want())
    const batch = buildBatch(this.#active, this.#opts.nBatch, this.#kv.free)
    if (!batch && this.#active.some((m) => !m.waiting)) {
      // nothing fits although something wants to run: cannot happen with reservations, but never spin on it
      const stuck = [...this.#active].reverse().find((m) => !m.waiting)!
      this.#end(stuck, 'error', 'drop-all', new HearthError('kv_cache_full', 'the KV cache cannot hold this request now; retry shortly'))
      return this.#build()
    }
    return batch
  }

  /** Cells the next step could fill. */
  #want(): number {
    let want = 0
    let cap = this.#opts.nBatch
    for (const m of this.#active) {
      want += m.pending >= 0 ? 1 : m.prefilling && !m.waiting ? m.prompt.length - m.booked : 0
      // a media span is decoded whole, even past the token budget
      if (m.prefilling && !m.waiting) cap = Math.max(cap, spanAt(m.media, m.booked)?.length ?? 0)
    }
    return Math.min(want, cap)
  }

  /**
   * Starts encoding the media spans of running prompts that their cells do not already hold (the prompt cache may
   * have them); a span that failed to encode fails its sequence. An encoding that ends wakes the loop.
   */
  #prepareMedia(): void {
    for (const m of [...this.#active]) {
      if (!m.media || !m.prefilling || m.waitFor || m.prep) continue
      const failed = m.media.find((s) => s.end > m.booked && s.error)
      if (failed) {
        this.#end(m, 'error', 'drop-all', failed.error)
        continue
      }
      for (const span of m.media) if (span.start >= m.booked) span.encode(() => this.#kick())
    }
  }

  /** Places queued requests into idle slots, after the cleanups of sequences that left. */
  #admit(): void {
    this.#runCleanups()
    this.#admission.admit()
  }

  // ---- a settled step ----

  /**
   * Books a step's results without rendering text: cells join their slots, sampled tokens become the next inputs,
   * and sequences that reached end of generation, their token budget or a sampling failure leave the batch.
   */
  #advance(batch: Batch<Running>, r: NativeStepResult): Sampled[] {
    const now = performance.now()
    for (const e of batch.entries) {
      this.#kv.book(e.member.slot, e.tokens)
      e.member.pending = -1
      e.media?.release()
    }
    const out: Sampled[] = []
    for (const e of batch.entries) {
      const m = e.member
      if (e.sample < 0 || m.left) continue
      const status = r.status[e.sample]
      if (status === SampleStatus.error) {
        const message = r.errors[e.sample] || 'sampling failed'
        this.#end(m, 'error', 'drop-generated', new HearthError('sampling_failed', message))
        continue
      }
      if (status === SampleStatus.none) {
        // the grammar is complete (or the constraints allow nothing more): the output ends here, normally
        this.#leave(m, 'keep')
        out.push({ member: m, token: -1, info: { id: -1, logprob: null, top: [] }, finish: 'stop' })
        continue
      }
      const token = r.tokens[e.sample]!
      this.#stats.generatedTokens++
      if (m.firstTokenAt === 0) m.firstTokenAt = now
      const info: TokenInfo = { id: token, logprob: null, top: [] }
      const p = m.seq.params
      if (p.logprobs || p.topLogprobs > 0) {
        info.logprob = r.logprobs[e.sample]!
        for (let k = 0; k < Math.min(r.nTop, p.topLogprobs); k++) {
          info.top.push({ id: r.topIds[e.sample * r.nTop + k]!, logprob: r.topLogprobs[e.sample * r.nTop + k]! })
        }
      }
      let finish: FinishReason | null = null
      if (this.#eog.has(token) && !p.ignoreEos) finish = 'eos'
      else if (m.seq.tokens.length + 1 >= m.budget) finish = 'length'
      // a finished sequence is out of the next step now; its last text is rendered with the others
      if (finish) this.#leave(m, 'keep')
      else m.pending = token
      out.push({ member: m, token, info, finish })
    }
    return out
  }

  /** Text for booked tokens: UTF-8, stop strings, listeners; a stop string ends its sequence here. */
  #render(items: Sampled[]): void {
    for (const { member: m, token, info, finish } of items) {
      if (m.seq.done) continue
      if (token < 0) {
        this.#end(m, finish ?? 'stop', 'keep')
        continue
      }
      if (finish === 'eos') {
        m.seq.acceptEnd(token)
        this.#end(m, 'eos', 'keep')
        continue
      }
      const stopped = m.seq.accept(token, info)
      if (m.seq.done) continue // its listener cancelled it
      if (stopped) this.#end(m, 'stop', 'keep')
      else if (finish) this.#end(m, finish, 'keep')
    }
  }

  // ---- leaving ----

  #cancel(seq: Sequence): void {
    const q = this.#admission.queue.findIndex((x) => x.seq === seq)
    if (q !== -1) {
      const [queued] = this.#admission.queue.splice(q, 1)
      const now = performance.now()
      seq.finish('cancelled', { cachedTokens: 0, queuedMs: now - queued!.at, admittedAt: now, firstTokenAt: 0 })
      return
    }
    const m = this.#active.find((x) => x.seq === seq)
    if (!m) return
    // the prompt stays cached for a retry; what a cancelled request generated is dropped
    this.#end(m, 'cancelled', 'drop-generated')
    this.#kick()
  }

  /** Ends `m`'s sequence, leaving the batch first if it has not yet. */
  #end(m: Running, reason: FinishReason, cleanup: Cleanup, error: HearthError | null = null): void {
    this.#leave(m, cleanup)
    m.seq.finish(reason, m, error)
  }

  /**
   * The one way out of the batch: the slot is released (its unused reservation returned) and the sequence takes
   * no part in later steps. Native cleanup of its cells waits for the step in flight, if any.
   */
  #leave(m: Running, cleanup: Cleanup): void {
    if (m.left) return
    m.left = true
    m.pending = -1
    this.#active = this.#active.filter((x) => x !== m)
    this.#kv.release(m.slot)
    if (cleanup === 'keep') return
    const slot = m.slot
    const keep = m.prompt.length
    const run = () => {
      if (this.#kv.isBusy(slot)) return // already given to a new request, which adopted or cleared its cells
      if (cleanup === 'drop-all') this.#kv.clear(slot)
      else this.#kv.truncate(slot, Math.min(this.#kv.length(slot), keep))
    }
    if (this.#stepping) this.#cleanups.push(run)
    else run()
  }

  #runCleanups(): void {
    if (this.#stepping) return
    for (const run of this.#cleanups.splice(0)) run()
  }

  /** A failed step: its sequences end with the error; their slots' cells are in an unknown state and are dropped. */
  #failBatch(batch: Batch<Running>, err: HearthError): void {
    const slots = new Set<number>()
    for (const e of batch.entries) {
      slots.add(e.member.slot)
      if (!e.member.seq.done) this.#end(e.member, 'error', 'drop-all', err)
    }
    for (const slot of slots) if (!this.#kv.isBusy(slot)) this.#kv.clear(slot)
  }

  /** Something unexpected threw in the loop: every running sequence fails, the loop goes on with the queue. */
  #failAll(err: unknown): void {
    const e = toHearthError(err)
    process.emitWarning(`hearth: the scheduler failed its running sequences: ${e.stack ?? e.message}`)
    for (const m of [...this.#active]) this.#end(m, 'error', 'drop-all', e)
  }
}


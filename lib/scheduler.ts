// Continuous batching over one context and one unified KV cache.
//
// Each step decodes, in one native call, the next token of every generating sequence plus chunks of
// waiting prompts within the step's token budget (chunked prefill), so a long prompt never stalls running
// streams. Requests join and leave between steps; admission is first come, first served. Slots keep their
// KV cells after a request ends, and a new request whose prompt shares a prefix with any slot reuses those
// cells (shared, not recomputed). Cells are counted by reference so shared prefixes count once.
import { HearthError, toHearthError } from './errors.js'
import type { NativeContext, NativeStepResult } from './native.js'
import { randomSeed, toNativeSampler, type SamplingParams } from './params.js'
import { Sequence, type FinishReason, type SequenceResult, type TokenInfo } from './sequence.js'
import { StopMatcher, TokenText, type TokenPieces } from './token-text.js'

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
}

export interface SchedulerStats {
  slots: number
  active: number
  queued: number
  usedCells: number
  nCtx: number
  steps: number
  promptTokens: number
  cachedTokens: number
  generatedTokens: number
}

export interface SubmitOptions {
  signal?: AbortSignal
}

class Slot {
  readonly id: number
  /** tokens whose KV cells this sequence id holds, at positions 0..n-1 */
  tokens: number[] = []
  /** ids of those cells, for reference counting of shared prefixes */
  cells: number[] = []
  active: Active | null = null
  lastUsed = 0

  constructor(id: number) {
    this.id = id
  }
}

// a sequence between admission and its end
class Active {
  readonly seq: Sequence
  readonly slot: Slot
  readonly text: TokenText
  readonly stops: StopMatcher
  /** sampled, not yet in the KV cache */
  pending = -1
  sampled: number[] = []
  cancelled = false
  /** finished (or stopped by a stop string) but maybe still in the step in flight */
  ended = false
  readonly admittedAt: number
  firstTokenAt = 0
  cachedTokens = 0
  queuedMs = 0
  /** an earlier sequence still prefilling the prefix this one shares: wait for its cells instead of computing them again */
  waitFor: Active | null = null
  waitUpTo = 0

  constructor(seq: Sequence, slot: Slot, pieces: TokenPieces) {
    this.seq = seq
    this.slot = slot
    this.text = new TokenText(pieces)
    this.stops = new StopMatcher(seq.params.stop)
    this.admittedAt = performance.now()
  }

  get prefilling(): boolean {
    return this.pending < 0 && this.sampled.length === 0
  }
}

/** Gathering a burst of requests before the first step from idle: see #kick(). */
const GATHER_QUIET_MS = 1
const GATHER_MAX_MS = 10

/** A shared prefix shorter than this is recomputed rather than waited for. */
const MIN_SHARED_WAIT = 16

function lcp(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

interface Queued {
  seq: Sequence
  at: number
}

interface Rendered {
  active: Active
  token: number
  info: TokenInfo
  /** how generation ends with this token, as far as tokens can tell (stop strings are found in #render) */
  finish: FinishReason | null
}

interface Batch {
  tokens: Int32Array
  positions: Int32Array
  seqIds: Int32Array
  sampleAt: Int32Array
  entries: BatchEntry[]
}

interface BatchEntry {
  active: Active
  tokens: number[]
  /** index into the step's sampled tokens, or -1 */
  sample: number
}

export class Scheduler {
  readonly #ctx: NativeContext
  readonly #pieces: TokenPieces
  readonly #eog: Set<number>
  readonly #eogArray: Int32Array
  readonly #opts: SchedulerOptions
  readonly #slots: Slot[]
  readonly #queue: Queued[] = []
  /** active sequences in admission order */
  #active: Active[] = []
  readonly #cellRefs = new Map<number, number>()
  #nextCell = 0
  #running = false
  #lastSubmit = -Infinity
  /** a native step is in flight: slots and samplers may not change until it settles */
  #stepping = false
  #closed = false
  #idle: (() => void) | null = null
  /** requests announced by expectArrival() and not yet submitted (or given up) */
  #arriving = 0
  #stats = { steps: 0, promptTokens: 0, cachedTokens: 0, generatedTokens: 0 }

  constructor(ctx: NativeContext, pieces: TokenPieces, eog: Int32Array, opts: SchedulerOptions) {
    this.#ctx = ctx
    this.#pieces = pieces
    this.#eog = new Set(eog)
    this.#eogArray = eog
    this.#opts = opts
    this.#slots = Array.from({ length: opts.nParallel }, (_, i) => new Slot(i))
  }

  get options(): Readonly<SchedulerOptions> {
    return this.#opts
  }

  stats(): SchedulerStats {
    return {
      slots: this.#slots.length,
      active: this.#active.length,
      queued: this.#queue.length,
      usedCells: this.#cellRefs.size,
      nCtx: this.#opts.nCtx,
      ...this.#stats,
    }
  }

  /**
   * Queues a generation. Throws HearthError: `context_length_exceeded` (400) when the prompt plus
   * maxTokens can never fit, `queue_full` (429) or `kv_cache_full` (503) when it cannot wait.
   */
  submit(prompt: Int32Array, params: SamplingParams, options: SubmitOptions = {}): Sequence {
    if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
    if (prompt.length === 0) throw new HearthError('invalid_input', 'the prompt is empty', 'prompt')
    const need = prompt.length + Math.max(1, params.maxTokens ?? 1)
    if (need > this.#opts.nCtxSeq) {
      throw new HearthError(
        'context_length_exceeded',
        `this request needs ${need} tokens (${prompt.length} in the prompt + ${params.maxTokens ?? 1} to generate) ` +
          `but the context holds ${this.#opts.nCtxSeq}; shorten the prompt or lower max_tokens`,
        params.maxTokens ? 'max_tokens' : 'messages',
      )
    }
    const seq = new Sequence(prompt, params, params.seed ?? randomSeed(), (s) => this.#cancel(s))
    if (params.maxTokens === 0) {
      queueMicrotask(() => seq.end(this.#result(seq, 'length', null, 0, [], 0, performance.now())))
      return seq
    }
    const entry = { seq, at: performance.now() }
    this.#lastSubmit = entry.at
    this.#queue.push(entry)
    if (!this.#stepping) this.#admit()
    const waiting = this.#waiting()
    if (waiting.count > this.#opts.maxQueue && this.#queue.at(-1) === entry) {
      this.#queue.pop()
      if (waiting.slotFree) throw new HearthError('kv_cache_full', 'the KV cache cannot hold this request now and the wait queue is full; retry shortly')
      throw new HearthError('queue_full', `all ${this.#slots.length} slots are busy and ${this.#opts.maxQueue} requests wait; retry shortly`)
    }
    options.signal?.addEventListener('abort', () => seq.cancel(), { once: true })
    if (options.signal?.aborted) seq.cancel()
    this.#kick()
    return seq
  }

  /**
   * Announces a request that has reached the server and will probably submit once its body is parsed and
   * its prompt rendered and tokenized; call the returned function when it has (or when it will not). The
   * first step from idle waits for announced requests (at most GATHER_MAX_MS), so clients that start
   * together are prefilled in one step even when their requests take a few milliseconds to prepare.
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

  /** Stops taking requests and resolves when every admitted and queued request has ended. */
  async close(): Promise<void> {
    this.#closed = true
    if (!this.#running && this.#active.length === 0 && this.#queue.length === 0) return
    await new Promise<void>((resolve) => (this.#idle = resolve))
  }

  #kick(): void {
    if (this.#running) return
    this.#running = true
    // From idle, the first step waits for a burst of requests to finish arriving (while announced ones are
    // still being prepared and until none was submitted for GATHER_QUIET_MS, at most GATHER_MAX_MS), so
    // clients that start together are prefilled together rather than the first alone and the rest one long
    // step later.
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
   * The step loop, pipelined: when a step settles, its tokens are booked (cells, end of generation, limits),
   * the next step is started at once, and only then is text rendered and streamed out (stop strings,
   * UTF-8, listeners), while the native side decodes. A sequence that hits a stop string has already been
   * put into that next step; its extra token is discarded.
   */
  async #loop(): Promise<void> {
    try {
      let inflight = this.#startStep()
      while (inflight) {
        const { batch, result } = await inflight
        let rendered: Rendered[] = []
        if (result instanceof HearthError) this.#failBatch(batch.entries, result)
        else rendered = this.#advance(batch.entries, result)
        inflight = this.#startStep()
        this.#render(rendered)
        inflight ??= this.#startStep() // sequences that just ended may have let queued ones in
      }
    } finally {
      this.#running = false
      if (this.#queue.length > 0 || this.#active.length > 0) this.#kick()
      else if (this.#idle) this.#idle()
    }
  }

  #startStep(): Promise<{ batch: Batch; result: NativeStepResult | HearthError }> | null {
    this.#reap()
    this.#admit()
    const batch = this.#build()
    if (!batch) return null
    this.#stepping = true
    return this.#ctx.step(batch.tokens, batch.positions, batch.seqIds, batch.sampleAt).then(
      (result) => {
        this.#stepping = false
        this.#stats.steps++
        return { batch, result }
      },
      (err: unknown) => {
        this.#stepping = false
        return { batch, result: toHearthError(err) }
      },
    )
  }

  #cancel(seq: Sequence): void {
    const q = this.#queue.findIndex((x) => x.seq === seq)
    if (q !== -1) {
      this.#queue.splice(q, 1)
      seq.end(this.#result(seq, 'cancelled', null, 0, [], 0, performance.now()))
      return
    }
    const a = this.#active.find((x) => x.seq === seq)
    if (!a) return
    a.cancelled = true
    this.#finish(a, 'cancelled')
    // the slot itself is released by #reap() before the next step (a step may be in flight now)
    this.#kick()
  }

  #reap(): void {
    if (this.#active.some((a) => a.cancelled)) {
      for (const a of this.#active) {
        if (!a.cancelled) continue
        // the prompt stays cached for a retry; what a cancelled request generated is dropped now
        this.#truncate(a.slot, Math.min(a.slot.tokens.length, a.seq.prompt.length))
        this.#release(a)
      }
      this.#active = this.#active.filter((a) => !a.cancelled)
    }
  }

  #release(a: Active): void {
    a.slot.active = null
    a.slot.lastUsed = performance.now()
  }

  // ---- admission and the prompt cache ----

  #admit(): void {
    let admitted = 0
    while (this.#queue.length > 0) {
      const free = this.#slots.filter((s) => s.active === null)
      if (free.length === 0) break
      const { seq, at } = this.#queue[0]!
      let placed: boolean
      try {
        placed = this.#place(seq, at, free)
      } catch (err) {
        // a request the native side refuses ends with its error; it must not block the queue
        this.#queue.shift()
        seq.end(this.#result(seq, 'error', toHearthError(err), 0, [], 0, performance.now()))
        continue
      }
      if (!placed) break // first come, first served: the head waits for KV space
      this.#queue.shift()
      admitted++
    }
    if (admitted > 0) this.#dropIdleCaches()
  }

  /**
   * Idle slots keep their cells only until new work starts, as llama-server clears its idle slots: in a
   * unified cache every decoded token attends over all occupied cells, so stale caches would slow every
   * running sequence. What new requests share with them was adopted first; cells shared with running
   * sequences stay (they are counted by reference).
   */
  #dropIdleCaches(): void {
    for (const s of this.#slots) if (s.active === null && s.tokens.length > 0) this.#truncate(s, 0)
  }

  #place(seq: Sequence, queuedAt: number, free: Slot[]): boolean {
    const prompt = seq.prompt
    const cache = this.#opts.promptCache
    // the free slot to use: the longest cached prefix, else the least recently used
    let target = free[0]!
    let targetLcp = -1
    for (const s of free) {
      const l = cache ? lcp(s.tokens, prompt) : 0
      if (l > targetLcp || (l === targetLcp && s.lastUsed < target.lastUsed)) {
        target = s
        targetLcp = l
      }
    }
    const available = cache ? Math.min(this.#bestPrefix(prompt).length, prompt.length - 1) : 0
    const pending = cache ? this.#pendingShare(prompt, available) : null
    const expected = pending ? pending.length : available

    // KV space: cells held by running sequences + this prompt's new cells + one per running sequence
    const fresh = prompt.length - expected
    if (this.#heldByActive() + fresh + this.#active.length + 1 > this.#opts.nCtx) return false

    // first, as it may throw: nothing has changed yet
    this.#ctx.setSampler(
      target.id,
      toNativeSampler(seq.params, this.#eogArray, seq.seed),
      seq.params.repeatPenalty !== 1 || seq.params.presencePenalty !== 0 || seq.params.frequencyPenalty !== 0 ? prompt : undefined,
    )
    const a = new Active(seq, target, this.#pieces)
    if (pending) {
      a.waitFor = pending.active
      a.waitUpTo = pending.length
    } else {
      a.cachedTokens = this.#adopt(target, prompt)
      this.#stats.cachedTokens += a.cachedTokens
    }
    a.queuedMs = a.admittedAt - queuedAt
    target.active = a
    this.#active.push(a)
    this.#stats.promptTokens += prompt.length
    return true
  }

  /**
   * How many queued requests cannot be admitted at the next step boundary (first come, first served: the
   * first that does not fit blocks the rest), and whether a slot would be free for the last of them.
   */
  #waiting(): { count: number; slotFree: boolean } {
    let free = this.#slots.filter((s) => s.active === null).length
    let held = this.#heldByActive() + this.#active.length
    for (let i = 0; i < this.#queue.length; i++) {
      const prompt = this.#queue[i]!.seq.prompt
      const reuse = this.#opts.promptCache ? Math.min(this.#bestPrefix(prompt).length, prompt.length - 1) : 0
      const fresh = prompt.length - reuse
      if (free === 0 || held + fresh + 1 > this.#opts.nCtx) return { count: this.#queue.length - i, slotFree: free > 0 }
      free--
      held += fresh + 1
    }
    return { count: 0, slotFree: free > 0 }
  }

  /** The slot holding the longest prefix of `prompt`, and its length. */
  #bestPrefix(prompt: Int32Array): { slot: Slot | null; length: number } {
    let slot: Slot | null = null
    let length = 0
    for (const s of this.#slots) {
      const l = lcp(s.tokens, prompt)
      if (l > length) {
        slot = s
        length = l
      }
    }
    return { slot, length }
  }

  /** A running sequence still prefilling a prefix of `prompt` clearly longer than what is cached now. */
  #pendingShare(prompt: Int32Array, available: number): { active: Active; length: number } | null {
    let best: { active: Active; length: number } | null = null
    for (const a of this.#active) {
      if (!a.prefilling || a.cancelled) continue
      const l = Math.min(lcp(a.seq.prompt, prompt), prompt.length - 1)
      if (l >= available + MIN_SHARED_WAIT && l > a.slot.tokens.length && l > (best?.length ?? 0)) best = { active: a, length: l }
    }
    return best
  }

  /**
   * Gives `target` the longest prefix of `prompt` that any slot holds: its own cells, or another slot's
   * shared into it (no copy in a unified cache). Returns how many prompt tokens need no computing.
   */
  #adopt(target: Slot, prompt: Int32Array): number {
    if (!this.#opts.promptCache) {
      this.#truncate(target, 0)
      return 0
    }
    const best = this.#bestPrefix(prompt)
    const own = lcp(target.tokens, prompt)
    // the last prompt token is always decoded again: its logits give the first output token
    const reuse = Math.min(Math.max(best.length, own), prompt.length - 1)
    if (best.slot && best.slot !== target && best.length > own) {
      this.#truncate(target, 0)
      this.#ctx.seqCopy(best.slot.id, target.id, 0, reuse)
      target.tokens = best.slot.tokens.slice(0, reuse)
      target.cells = best.slot.cells.slice(0, reuse)
      for (const c of target.cells) this.#cellRefs.set(c, (this.#cellRefs.get(c) ?? 0) + 1)
    } else {
      this.#truncate(target, reuse)
    }
    return reuse
  }

  #heldByActive(): number {
    // cells referenced by running sequences (shared prefixes counted once)
    const seen = new Set<number>()
    for (const a of this.#active) for (const c of a.slot.cells) seen.add(c)
    return seen.size
  }

  /** Drops the slot's cells from position n on. */
  #truncate(slot: Slot, n: number): void {
    if (slot.tokens.length <= n) return
    this.#ctx.seqRemove(slot.id, n, -1)
    for (let i = n; i < slot.cells.length; i++) this.#unref(slot.cells[i]!)
    slot.tokens.length = n
    slot.cells.length = n
  }

  #unref(cell: number): void {
    const r = this.#cellRefs.get(cell)!
    if (r <= 1) this.#cellRefs.delete(cell)
    else this.#cellRefs.set(cell, r - 1)
  }

  /** Frees cached cells of idle slots, least recently used first, until `need` cells are free. */
  #makeRoom(need: number): boolean {
    while (this.#opts.nCtx - this.#cellRefs.size < need) {
      let victim: Slot | null = null
      for (const s of this.#slots) {
        if (s.active === null && s.tokens.length > 0 && (!victim || s.lastUsed < victim.lastUsed)) victim = s
      }
      if (!victim) return false
      this.#truncate(victim, 0)
    }
    return true
  }

  // ---- one step ----

  #build(): Batch | null {
    if (this.#active.length === 0) return null
    this.#resolveWaits()
    const entries: BatchEntry[] = []
    let nDecode = 0
    for (const a of this.#active) if (a.pending >= 0) nDecode++
    // every generating sequence needs one cell; stop the newest ones if even that does not fit
    while (nDecode > 0 && !this.#makeRoom(nDecode)) {
      const newest = [...this.#active].reverse().find((a) => a.pending >= 0)!
      this.#finish(newest, 'length')
      this.#release(newest)
      this.#active = this.#active.filter((a) => a !== newest)
      nDecode--
    }
    let budget = this.#opts.nBatch
    let nSample = 0
    for (const a of this.#active) {
      if (a.pending < 0) continue
      entries.push({ active: a, tokens: [a.pending], sample: nSample++ })
      budget--
    }
    for (const a of this.#active) {
      if (budget <= 0) break
      if (!a.prefilling || a.waitFor) continue
      const inBatch = this.#opts.nBatch - budget
      const done = a.slot.tokens.length
      const want = Math.min(budget, a.seq.prompt.length - done)
      this.#makeRoom(inBatch + want) // best effort: a smaller chunk still makes progress
      const n = Math.min(want, this.#opts.nCtx - this.#cellRefs.size - inBatch)
      if (n <= 0) break
      const last = done + n === a.seq.prompt.length
      entries.push({ active: a, tokens: Array.from(a.seq.prompt.subarray(done, done + n)), sample: last ? nSample++ : -1 })
      budget -= n
    }
    if (entries.length === 0) {
      // running sequences that cannot get a single KV cell: the newest gives way
      const stuck = [...this.#active].reverse().find((a) => !a.waitFor)
      if (stuck) {
        this.#finish(stuck, 'error', new HearthError('kv_cache_full', 'the KV cache cannot hold this request now; retry shortly'))
        this.#release(stuck)
        this.#truncate(stuck.slot, 0)
        this.#active = this.#active.filter((a) => a !== stuck)
      }
      return null
    }
    const total = this.#opts.nBatch - budget
    const tokens = new Int32Array(total)
    const positions = new Int32Array(total)
    const seqIds = new Int32Array(total)
    const sampleAt = new Int32Array(nSample)
    let i = 0
    for (const e of entries) {
      const start = e.active.slot.tokens.length
      for (let k = 0; k < e.tokens.length; k++, i++) {
        tokens[i] = e.tokens[k]!
        positions[i] = start + k
        seqIds[i] = e.active.slot.id
      }
      if (e.sample >= 0) sampleAt[e.sample] = i - 1
    }
    return { tokens, positions, seqIds, sampleAt, entries }
  }

  // waiting sequences whose prefix is ready (or whose source went away) take the shared cells now
  #resolveWaits(): void {
    for (const a of this.#active) {
      const w = a.waitFor
      if (!w) continue
      const gone = w.cancelled || !this.#active.includes(w)
      if (!gone && w.prefilling && w.slot.tokens.length < a.waitUpTo) continue
      a.waitFor = null
      a.cachedTokens = this.#adopt(a.slot, a.seq.prompt)
      this.#stats.cachedTokens += a.cachedTokens
    }
  }

  /**
   * Books a step's results without rendering text: cells join their slots, sampled tokens become the next
   * inputs, and sequences that reached end of generation, max tokens or the context end leave the batch.
   */
  #advance(entries: BatchEntry[], r: NativeStepResult): Rendered[] {
    const now = performance.now()
    for (const e of entries) {
      const slot = e.active.slot
      for (const t of e.tokens) {
        const cell = this.#nextCell++
        slot.tokens.push(t)
        slot.cells.push(cell)
        this.#cellRefs.set(cell, 1)
      }
      e.active.pending = -1
    }
    const out: Rendered[] = []
    for (const e of entries) {
      if (e.sample < 0) continue
      const a = e.active
      if (a.cancelled || a.ended) continue
      const token = r.tokens[e.sample]!
      a.sampled.push(token)
      this.#stats.generatedTokens++
      if (a.firstTokenAt === 0) a.firstTokenAt = now
      const info: TokenInfo = { id: token, logprob: null, top: [] }
      if (a.seq.params.logprobs || a.seq.params.topLogprobs > 0) {
        info.logprob = r.logprobs[e.sample]!
        for (let k = 0; k < Math.min(r.nTop, a.seq.params.topLogprobs); k++) {
          info.top.push({ id: r.topIds[e.sample * r.nTop + k]!, logprob: r.topLogprobs[e.sample * r.nTop + k]! })
        }
      }
      let finish: FinishReason | null = null
      if (this.#eog.has(token) && !a.seq.params.ignoreEos) finish = 'eos'
      else if (a.seq.params.maxTokens !== null && a.sampled.length >= a.seq.params.maxTokens) finish = 'length'
      else if (a.slot.tokens.length + 1 > this.#opts.nCtxSeq) finish = 'length'
      // a finished sequence is out of the next step now; its last text is rendered with the others
      if (finish) this.#retire(a)
      else a.pending = token
      out.push({ active: a, token, info, finish })
    }
    if (out.some((x) => x.finish)) this.#active = this.#active.filter((a) => !a.ended)
    return out
  }

  /** Text for booked tokens: UTF-8, stop strings, listeners; a stop string ends its sequence here. */
  #render(items: Rendered[]): void {
    for (const { active: a, token, info, finish } of items) {
      if (a.cancelled || a.seq.done) continue
      if (finish === 'eos') {
        a.seq.emit({ text: this.#finalText(a), token: null })
        this.#finish(a, a.stops.stopped !== null ? 'stop' : 'eos')
        continue
      }
      let text = a.stops.push(a.text.push(token))
      if (a.stops.stopped === null && finish === 'length') text += this.#finalText(a)
      a.seq.emit({ text, token: info })
      if (a.stops.stopped !== null) {
        if (!a.ended) {
          this.#retire(a)
          this.#active = this.#active.filter((x) => x !== a)
        }
        this.#finish(a, 'stop')
      } else if (finish) {
        this.#finish(a, finish)
      }
    }
  }

  // what is left when generation ends: an unfinished UTF-8 character is dropped, held-back text that
  // turned out not to be a stop string is released
  #finalText(a: Active): string {
    const text = a.stops.push(a.text.flush())
    return a.stops.stopped !== null ? text : text + a.stops.flush()
  }

  /** Takes `a` out of future steps; a token of it in the step now in flight is discarded when that settles. */
  #retire(a: Active): void {
    a.ended = true
    a.pending = -1
    this.#release(a)
  }

  #finish(a: Active, reason: FinishReason, error: HearthError | null = null): void {
    a.seq.end(this.#result(a.seq, reason, error, a.cachedTokens, a.sampled, a.queuedMs, a.admittedAt, a.firstTokenAt, a.stops.stopped))
  }

  #failBatch(entries: BatchEntry[], err: HearthError): void {
    for (const e of entries) {
      const a = e.active
      this.#truncate(a.slot, 0)
      // the failed step's cells are in an unknown state: drop everything this sequence id holds
      this.#ctx.seqRemove(a.slot.id)
      if (!a.seq.done) this.#finish(a, 'error', err)
      this.#release(a)
    }
    const failed = new Set(entries.map((e) => e.active))
    this.#active = this.#active.filter((a) => !failed.has(a))
  }

  #result(
    seq: Sequence,
    finishReason: FinishReason,
    error: HearthError | null,
    cachedTokens: number,
    tokens: number[],
    queuedMs: number,
    admittedAt: number,
    firstTokenAt = 0,
    stopString: string | null = null,
  ): SequenceResult {
    const now = performance.now()
    return {
      finishReason,
      stopString,
      promptTokens: seq.prompt.length,
      cachedTokens,
      completionTokens: tokens.length,
      tokens: tokens.slice(),
      error,
      timings: {
        queuedMs,
        promptMs: firstTokenAt ? firstTokenAt - admittedAt : now - admittedAt,
        generateMs: firstTokenAt ? now - firstTokenAt : 0,
      },
    }
  }
}

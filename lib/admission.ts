// Admission: placing queued requests into idle slots (first come, first served, with KV reservations) and
// giving each its prompt's cells: a prefix a slot holds (adopted or shared), a running prefill's (waited for), or
// one saved to host RAM (restored). Saves and restores are native work on the decode thread, so a placement that
// needs one gets a `prep` that the scheduler runs between steps (`nextOp`). The decisions themselves are
// prefix-plan.ts's; this applies them to slots, samplers and the native context.
import { toHearthError } from './errors.js'
import { commonPrefix, type KvCells } from './kv-cells.js'
import type { MediaSpan } from './media.js'
import type { NativeSeqState } from './native.js'
import { toNativeSampler } from './params.js'
import { adoptPrefix, cellsNeeded, pickSlot, planReuse, type Reuse } from './prefix-plan.js'
import type { PromptSaver } from './prompt-saver.js'
import { Running } from './running.js'
import type { ChatConstraint, SchedulerOptions, StepContext } from './scheduler.js'
import type { Sequence } from './sequence.js'

/** A request waiting for a slot. */
export interface Queued {
  seq: Sequence
  budget: number
  at: number
  chat: ChatConstraint | undefined
  media: readonly MediaSpan[] | undefined
}

/** What admission reads and changes of the scheduler. */
export interface AdmissionParts {
  ctx: StepContext
  kv: KvCells
  saver: PromptSaver | null
  opts: SchedulerOptions
  eog: Int32Array
  /** the scheduler's counters */
  stats: { promptTokens: number; cachedTokens: number }
  /** running sequences in admission order */
  active: () => readonly Running[]
  /** a placed sequence joins the running ones */
  join: (m: Running) => void
}

export class Admission {
  readonly queue: Queued[] = []
  readonly #ctx: StepContext
  readonly #kv: KvCells
  readonly #saver: PromptSaver | null
  readonly #opts: SchedulerOptions
  readonly #eogArray: Int32Array
  readonly #stats: AdmissionParts['stats']
  readonly #active: () => readonly Running[]
  readonly #join: (m: Running) => void

  constructor(p: AdmissionParts) {
    this.#ctx = p.ctx
    this.#kv = p.kv
    this.#saver = p.saver
    this.#opts = p.opts
    this.#eogArray = p.eog
    this.#stats = p.stats
    this.#active = p.active
    this.#join = p.join
  }

  /**
   * The next piece of native work before a step, or null: a placement's preparation (admission order), else an
   * idle cache the step will evict that is worth saving first. `tried` keeps a slot whose save was not kept
   * from being tried again in the same round.
   */
  nextOp(tried: Set<number>, want: number): (() => Promise<void>) | null {
    const m = this.#active().find((x) => x.prep)
    if (m) return () => this.#prepare(m)
    const victim = this.#saver?.victimToSave(want, tried) ?? null
    return victim === null ? null : () => this.#saver!.save(victim)
  }

  /** A placement's native work: save the slot's old cells, then restore a saved prefix (or adopt from slots). */
  async #prepare(m: Running): Promise<void> {
    const prep = m.prep!
    const saver = this.#saver!
    if (prep.restore) saver.ram.pin(prep.restore.state)
    try {
      if (prep.save) await saver.save(m.slot)
      if (m.left) return
      if (prep.restore && (await saver.restore(m.slot, prep.restore, prep.keep, () => m.left))) {
        m.cachedTokens = prep.keep
        this.#stats.cachedTokens += prep.keep
        return
      }
      if (m.left || m.waitFor) return // a wait adopts its cells once the prefix is ready
      m.cachedTokens = adoptPrefix(this.#kv, m.slot, m.prompt, this.#opts.promptCache, m.media)
      this.#counted(m)
    } finally {
      if (prep.restore) saver.ram.unpin(prep.restore.state)
      m.prep = null
    }
  }

  /** Counts `m`'s reused tokens once they are known, and a RAM-cache miss when RAM could not have added any. */
  #counted(m: Running): void {
    this.#stats.cachedTokens += m.cachedTokens
    if (this.#saver && m.cachedTokens < m.prompt.length - 1) this.#saver.ram.miss()
  }

  admit(): void {
    while (this.queue.length > 0) {
      const idle = this.#kv.idleSlots()
      if (idle.length === 0) break
      const head = this.queue[0]!
      let placed: boolean
      try {
        placed = this.#place(head, idle)
      } catch (err) {
        // a request the native side refuses ends with its error; it must not block the queue
        this.queue.shift()
        head.seq.finish('error', { cachedTokens: 0, queuedMs: 0, admittedAt: performance.now(), firstTokenAt: 0 }, toHearthError(err))
        continue
      }
      if (!placed) break // first come, first served: the head waits for KV space
      this.queue.shift()
      // a placement with native work to do is prepared before the next is placed, which then sees its cells
      if (this.#active().at(-1)?.prep) break
    }
  }

  /** Cells `prompt` needs promised beyond what busy slots already hold, and its reuse. */
  #need(prompt: Int32Array, budget: number, media: readonly MediaSpan[] | undefined): { cells: number; reuse: Reuse<Running, NativeSeqState> } {
    const reuse = planReuse(this.#kv, this.#active(), prompt, this.#opts.promptCache, media, this.#saver?.ram)
    return { cells: cellsNeeded(this.#kv, reuse, prompt, budget), reuse }
  }

  #place(q: Queued, idle: number[]): boolean {
    const { seq, budget } = q
    const prompt = seq.prompt
    const { cells, reuse } = this.#need(prompt, budget, q.media)
    if (!this.#kv.canReserve(cells)) return false
    const target = pickSlot(this.#kv, idle, prompt, this.#opts.promptCache)
    // first, as it may throw: nothing has changed yet
    const p = seq.params
    const penalized = p.repeatPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0
    // media positions hold pseudo-tokens, which are no vocabulary ids: the penalties see the text only
    const penaltyTokens = penalized ? (q.media ? prompt.filter((t) => t >= 0) : prompt) : undefined
    this.#ctx.setSampler(target, toNativeSampler(p, this.#eogArray, seq.seed, q.chat), penaltyTokens)
    const m = new Running(seq, target, this.#kv, budget, q.at, q.media)
    this.#kv.acquire(target, prompt.length - reuse.length + budget)
    this.#join(m)
    this.#stats.promptTokens += prompt.length
    if (reuse.waitFor) {
      m.waitFor = reuse.waitFor
      m.waitUpTo = reuse.length
    }
    // the target's own cells survive as far as they are the prefix it reuses; what would be cut is saved first
    const own = Math.min(commonPrefix(this.#kv.tokens(target), prompt), reuse.length)
    const keepsOwn = !reuse.waitFor && !reuse.ram && (reuse.fromSlot === target || own >= reuse.length)
    const save = this.#saver?.worthSaving(target, keepsOwn ? own : 0) ?? false
    if (save || reuse.ram) {
      m.prep = { save, restore: reuse.ram, keep: reuse.length }
    } else if (!reuse.waitFor) {
      m.cachedTokens = adoptPrefix(this.#kv, target, prompt, this.#opts.promptCache, q.media)
      this.#counted(m)
    }
    return true
  }

  /**
   * How many queued requests cannot be admitted at the next step boundary (first come, first served: the first
   * that does not fit blocks the rest), and whether a slot would be free for the last of them.
   */
  stillWaiting(): { count: number; slotFree: boolean } {
    let free = this.#kv.idleSlots().length
    let promised = this.#kv.heldByBusy() + this.#kv.reserved
    for (let i = 0; i < this.queue.length; i++) {
      const q = this.queue[i]!
      const cells = this.#need(q.seq.prompt, q.budget, q.media).cells
      const fits = this.#kv.layout === 'per-seq' ? cells <= this.#kv.slotCells : promised + cells <= this.#opts.nCtx
      if (free === 0 || !fits) return { count: this.queue.length - i, slotFree: free > 0 }
      free--
      promised += cells
    }
    return { count: 0, slotFree: free > 0 }
  }

  // waiting sequences whose prefix is ready (or whose source went away) take the shared cells now
  resolveWaits(): void {
    for (const m of this.#active()) {
      const w = m.waitFor
      if (!w || m.prep) continue
      if (!w.left && w.prefilling && w.booked < m.waitUpTo) continue
      m.waitFor = null
      m.cachedTokens = adoptPrefix(this.#kv, m.slot, m.prompt, this.#opts.promptCache, m.media)
      this.#counted(m)
    }
  }
}

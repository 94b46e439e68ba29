// A sequence between admission and leaving the batch: its slot, its token budget, and where its prompt stands.
import { spanAt, type BatchMember } from './batch.js'
import type { KvCells } from './kv-cells.js'
import type { MediaSpan } from './media.js'
import type { NativeSeqState } from './native.js'
import type { PrefixSource } from './prefix-plan.js'
import type { CacheMatch } from './prompt-cache.js'
import type { Sequence } from './sequence.js'

/** A sequence between admission and leaving the batch. */
export class Running implements BatchMember, PrefixSource {
  readonly seq: Sequence
  readonly slot: number
  readonly #kv: KvCells
  /** tokens it may generate: max tokens, or the room left in its context */
  readonly budget: number
  readonly admittedAt = performance.now()
  readonly queuedMs: number
  pending = -1
  /** out of the batch; a token of it in the step in flight is discarded when that settles */
  left = false
  firstTokenAt = 0
  cachedTokens = 0
  /** an earlier sequence still prefilling the prefix this one shares: wait for its cells instead of computing them */
  waitFor: Running | null = null
  waitUpTo = 0
  /** the prompt's media spans, in order */
  readonly media: readonly MediaSpan[] | undefined
  /** work on the native side before it can decode: its slot's old cells saved, a saved prefix restored */
  prep: Prep | null = null

  constructor(seq: Sequence, slot: number, kv: KvCells, budget: number, queuedAt: number, media?: readonly MediaSpan[]) {
    this.seq = seq
    this.slot = slot
    this.#kv = kv
    this.budget = budget
    this.queuedMs = this.admittedAt - queuedAt
    this.media = media
  }

  get prompt(): Int32Array {
    return this.seq.prompt
  }

  /** prompt positions its cells hold; none while its slot's old cells wait to be saved or replaced (prep) */
  get booked(): number {
    return this.prep ? 0 : this.#kv.length(this.slot)
  }

  get prefilling(): boolean {
    return this.pending < 0 && this.seq.tokens.length === 0
  }

  get waiting(): boolean {
    return this.waitFor !== null || this.prep !== null || this.encoding
  }

  /** its next prompt positions are a media span whose embeddings are still being encoded */
  get encoding(): boolean {
    if (!this.media || !this.prefilling) return false
    const span = spanAt(this.media, this.booked)
    return span !== undefined && span.embeddings === null
  }
}


/** A placement's native work between steps, in this order. */
export interface Prep {
  /** the slot's cells are worth keeping in RAM and are about to be cut: save them first */
  save: boolean
  /** then restore this saved prefix and keep `keep` tokens of it (else the cells come from a slot, or a wait) */
  restore: CacheMatch<NativeSeqState> | null
  keep: number
}

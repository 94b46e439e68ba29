// The prompt cache's decisions, as pure logic over the KV accounting: how much of a new prompt can come from
// cells (a slot's now, a running prefill's once it is done, or a prefix saved to host RAM), how many cells it then
// needs promised, which idle slot takes it, and how its slot adopts the prefix. The scheduler applies them; tests
// call them alone.
import { commonPrefix, type KvCells } from './kv-cells.js'
import { clampToSpans } from './batch.js'
import type { MediaSpan } from './media.js'
import type { CacheMatch, PromptCache, SavedState } from './prompt-cache.js'

/** A shared prefix shorter than this is recomputed rather than waited for. */
export const MIN_SHARED_WAIT = 16

/** What the plan needs to know of a running sequence. */
export interface PrefixSource {
  readonly slot: number
  readonly prompt: Int32Array
  /** cells its slot holds now */
  readonly booked: number
  /** still computing its prompt */
  readonly prefilling: boolean
  /** out of the batch */
  readonly left: boolean
}

/** How much of a prompt can come from cells: a slot's cells now, a running prefill's once it is done, or RAM. */
export interface Reuse<S extends PrefixSource = PrefixSource, T extends SavedState = SavedState> {
  length: number
  /** the slot the cells come from, or -1 */
  fromSlot: number
  /** the running prefill to wait for, or null when the cells are there now */
  waitFor: S | null
  /** a prefix saved in RAM to restore, or null */
  ram: CacheMatch<T> | null
}

const NONE: Reuse<never, never> = { length: 0, fromSlot: -1, waitFor: null, ram: null }

/**
 * The longest prefix of `prompt` available from cells. A running prefill is waited for when it will give at least
 * MIN_SHARED_WAIT more tokens than any slot holds now and has not computed them yet. A prefix saved in `ram` is
 * restored when it gives at least the cache's minTokens more than any slot holds: below that, computing the
 * tokens is cheaper than restoring them (measured, DEVELOPERS.md).
 */
export function planReuse<S extends PrefixSource, T extends SavedState = SavedState>(
  kv: KvCells,
  running: readonly S[],
  prompt: Int32Array,
  enabled: boolean,
  media?: readonly MediaSpan[],
  ram?: PromptCache<T> | null,
): Reuse<S, T> {
  if (!enabled) return NONE
  const best = kv.bestPrefix(prompt)
  // the last prompt token is always decoded again: its logits give the first output token; cells of part of a
  // media span are no use (a span is decoded whole)
  const last = prompt.length - 1
  let available = clampToSpans(media, Math.min(best.length, last))
  let saved: CacheMatch<T> | null = null
  if (ram && available < last) {
    const match = ram.lookup(prompt)
    const length = match ? clampToSpans(media, Math.min(match.length, last)) : 0
    if (match && length >= available + ram.minTokens) {
      saved = match
      available = length
    }
  }
  let wait: S | null = null
  let waitLength = 0
  for (const m of running) {
    if (!m.prefilling || m.left) continue
    const l = clampToSpans(media, Math.min(commonPrefix(m.prompt, prompt), prompt.length - 1))
    if (l >= available + MIN_SHARED_WAIT && l > m.booked && l > waitLength) {
      wait = m
      waitLength = l
    }
  }
  if (wait) return { length: waitLength, fromSlot: wait.slot, waitFor: wait, ram: null }
  if (saved) return { length: available, fromSlot: -1, waitFor: null, ram: saved }
  return { length: available, fromSlot: best.slot, waitFor: null, ram: null }
}

/** Cells a prompt with `reuse` and `budget` tokens to generate must have promised beyond what busy slots hold. */
export function cellsNeeded(kv: KvCells, reuse: Reuse, prompt: Int32Array, budget: number): number {
  // a prefix adopted from an idle slot (or restored from RAM) becomes held by a busy one: it needs room as much as
  // new cells do
  const adoptedIdle = reuse.ram || (reuse.fromSlot >= 0 && !kv.isBusy(reuse.fromSlot)) ? reuse.length : 0
  return prompt.length - reuse.length + budget + adoptedIdle
}

/** The idle slot for `prompt`: the longest cached prefix of its own, else the least recently used (idle is LRU-first). */
export function pickSlot(kv: KvCells, idle: readonly number[], prompt: Int32Array, enabled: boolean): number {
  let target = idle[0]!
  let targetLength = -1
  for (const s of idle) {
    const l = enabled ? commonPrefix(kv.tokens(s), prompt) : 0
    if (l > targetLength) {
      target = s
      targetLength = l
    }
  }
  return target
}

/**
 * Gives `target` the longest prefix of `prompt` that any slot holds: its own cells, or another slot's shared
 * into it. Returns how many prompt tokens need no computing.
 */
export function adoptPrefix(kv: KvCells, target: number, prompt: Int32Array, enabled: boolean, media?: readonly MediaSpan[]): number {
  if (!enabled) {
    kv.truncate(target, 0)
    return 0
  }
  const best = kv.bestPrefix(prompt)
  const own = commonPrefix(kv.tokens(target), prompt)
  const reuse = clampToSpans(media, Math.min(Math.max(best.length, own), prompt.length - 1))
  if (best.slot >= 0 && best.slot !== target && best.length > own) kv.share(best.slot, target, reuse)
  else kv.truncate(target, reuse)
  return reuse
}

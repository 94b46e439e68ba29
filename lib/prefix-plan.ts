// The prompt cache's decisions, as pure logic over the KV accounting: how much of a new prompt can come from
// cells (a slot's now, or a running prefill's once it is done), how many cells it then needs promised, which
// idle slot takes it, and how its slot adopts the prefix. The scheduler applies them; tests call them alone.
import { commonPrefix, type KvCells } from './kv-cells.js'
import { clampToSpans } from './batch.js'
import type { MediaSpan } from './media.js'

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

/** How much of a prompt can come from cells: a slot's cells now, or a running prefill's once it is done. */
export interface Reuse<S extends PrefixSource = PrefixSource> {
  length: number
  /** the slot the cells come from, or -1 */
  fromSlot: number
  /** the running prefill to wait for, or null when the cells are there now */
  waitFor: S | null
}

const NONE: Reuse<never> = { length: 0, fromSlot: -1, waitFor: null }

/**
 * The longest prefix of `prompt` available from cells. A running prefill is waited for when it will give at least
 * MIN_SHARED_WAIT more tokens than any slot holds now and has not computed them yet.
 */
export function planReuse<S extends PrefixSource>(
  kv: KvCells,
  running: readonly S[],
  prompt: Int32Array,
  enabled: boolean,
  media?: readonly MediaSpan[],
): Reuse<S> {
  if (!enabled) return NONE
  const best = kv.bestPrefix(prompt)
  // the last prompt token is always decoded again: its logits give the first output token; cells of part of a
  // media span are no use (a span is decoded whole)
  const available = clampToSpans(media, Math.min(best.length, prompt.length - 1))
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
  if (wait) return { length: waitLength, fromSlot: wait.slot, waitFor: wait }
  return { length: available, fromSlot: best.slot, waitFor: null }
}

/** Cells a prompt with `reuse` and `budget` tokens to generate must have promised beyond what busy slots hold. */
export function cellsNeeded(kv: KvCells, reuse: Reuse, prompt: Int32Array, budget: number): number {
  // a prefix adopted from an idle slot becomes held by a busy one: it needs room as much as new cells do
  const adoptedIdle = reuse.fromSlot >= 0 && !kv.isBusy(reuse.fromSlot) ? reuse.length : 0
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

// The host-RAM prompt cache: KV cells of sequences that had to give them up (a slot taken by other work, idle
// cells evicted for room), saved to host memory and keyed by their tokens, so a later prompt that extends one
// is restored instead of recomputed. Least recently used entries go first, when the cache is over its own cap or
// when the one memory budget (lib/memory-budget.ts) needs the bytes for something else. Pure bookkeeping over
// opaque saved states: the scheduler saves and restores them on the native side.
import { commonPrefix } from './kv-cells.js'
import type { BudgetHolder, MemoryBudget } from './memory-budget.js'

/** A saved state as the cache holds it (the native SeqState): its size, and a way to free it now. */
export interface SavedState {
  readonly byteLength: number
  dispose(): void
}

export interface PromptCacheOptions {
  /** most bytes the cache holds (--cache-ram) */
  maxBytes: number
  /** the shared budget its bytes are also taken from, if any */
  budget?: MemoryBudget | null
  /** a state shorter than this is neither kept nor restored: recomputing it is cheaper (lib/scheduler.ts) */
  minTokens: number
}

export interface PromptCacheStats {
  entries: number
  bytes: number
  /** tokens the entries hold, all together */
  tokens: number
  /** requests whose prefix was restored from the cache */
  hits: number
  /** requests it had nothing (long enough) for beyond what the KV cache held */
  misses: number
  /** entries dropped to make room (the cap or the memory budget) */
  evictions: number
  /** states taken in */
  saves: number
  /** prompt tokens restored instead of computed */
  restoredTokens: number
}

interface Entry<S extends SavedState> {
  tokens: Int32Array
  state: S
  bytes: number
  lastUsed: number
}

export interface CacheMatch<S extends SavedState> {
  tokens: Int32Array
  state: S
  /** how many leading tokens of the prompt it holds */
  length: number
}

export class PromptCache<S extends SavedState = SavedState> implements BudgetHolder {
  readonly name = 'prompt cache'
  readonly maxBytes: number
  readonly minTokens: number
  readonly #budget: MemoryBudget | null
  /** least recently used first */
  #entries: Entry<S>[] = []
  #bytes = 0
  #clock = 0
  #stats = { hits: 0, misses: 0, evictions: 0, saves: 0, restoredTokens: 0 }
  /** entries about to be restored: not evicted until unpinned */
  readonly #pinned = new Set<S>()

  constructor(options: PromptCacheOptions) {
    this.maxBytes = Math.max(0, options.maxBytes)
    this.minTokens = Math.max(1, options.minTokens)
    this.#budget = options.budget ?? null
  }

  get bytes(): number {
    return this.#bytes
  }

  get size(): number {
    return this.#entries.length
  }

  stats(): PromptCacheStats {
    return {
      entries: this.#entries.length,
      bytes: this.#bytes,
      tokens: this.#entries.reduce((n, e) => n + e.tokens.length, 0),
      ...this.#stats,
    }
  }

  /** The entry holding the longest prefix of `prompt` (at least minTokens), or null. Counts nothing. */
  lookup(prompt: ArrayLike<number>): CacheMatch<S> | null {
    let best: Entry<S> | null = null
    let length = 0
    for (const e of this.#entries) {
      const l = commonPrefix(e.tokens, prompt)
      if (l > length) {
        best = e
        length = l
      }
    }
    if (!best || length < this.minTokens) return null
    return { tokens: best.tokens, state: best.state, length }
  }

  /** A request restored `length` tokens of `match`: counted, and the entry becomes the most recently used. */
  hit(match: CacheMatch<S>, length: number): void {
    this.#stats.hits++
    this.#stats.restoredTokens += length
    const i = this.#entries.findIndex((e) => e.state === match.state)
    if (i < 0) return
    const [e] = this.#entries.splice(i, 1)
    e!.lastUsed = ++this.#clock
    this.#entries.push(e!)
  }

  /** Keeps `state`'s entry from eviction while a restore of it waits (a save before it may need room). */
  pin(state: S): void {
    this.#pinned.add(state)
  }

  unpin(state: S): void {
    this.#pinned.delete(state)
  }

  /** A request that the cache could not help. */
  miss(): void {
    this.#stats.misses++
  }

  /** Whether saving these tokens would add nothing: too short, or an entry already holds them all. */
  covers(tokens: ArrayLike<number>): boolean {
    if (tokens.length < this.minTokens || this.maxBytes === 0) return true
    return this.#entries.some((e) => e.tokens.length >= tokens.length && commonPrefix(e.tokens, tokens) === tokens.length)
  }

  /**
   * Takes in a saved state of `tokens`. Entries it makes redundant (prefixes of it) are dropped; the least
   * recently used make room under the cap and the budget. A state that cannot fit is disposed, and so is one
   * that adds nothing. Returns whether it was kept.
   */
  add(tokens: ArrayLike<number>, state: S): boolean {
    const bytes = state.byteLength
    if (this.covers(tokens) || bytes > this.maxBytes) {
      state.dispose()
      return false
    }
    const key = Int32Array.from(tokens)
    for (const e of [...this.#entries]) {
      if (!this.#pinned.has(e.state) && e.tokens.length <= key.length && commonPrefix(e.tokens, key) === e.tokens.length) this.#drop(e)
    }
    while (this.#bytes + bytes > this.maxBytes) {
      if (this.#evictOldest() === 0) {
        state.dispose()
        return false
      }
    }
    if (this.#budget) {
      while (!this.#budget.take(this, bytes)) {
        if (this.#evictOldest() === 0) {
          state.dispose()
          return false
        }
      }
    }
    this.#entries.push({ tokens: key, state, bytes, lastUsed: ++this.#clock })
    this.#bytes += bytes
    this.#stats.saves++
    return true
  }

  /** The budget asks for room: least recently used entries go until `bytes` are freed (or none is left). */
  giveBack(bytes: number): number {
    let freed = 0
    while (freed < bytes) {
      const n = this.#evictOldest(false)
      if (n === 0) break
      freed += n
    }
    return freed
  }

  /** Drops every entry, pinned ones too. */
  clear(): void {
    this.#pinned.clear()
    for (const e of [...this.#entries]) this.#drop(e)
  }

  /**
   * Evicts the least recently used entry that is not pinned; returns its size, 0 when there is none. `toBudget`
   * false when the budget itself asked.
   */
  #evictOldest(toBudget = true): number {
    const e = this.#entries.find((x) => !this.#pinned.has(x.state))
    if (!e) return 0
    this.#stats.evictions++
    return this.#drop(e, toBudget)
  }

  #drop(e: Entry<S>, toBudget = true): number {
    const bytes = e.bytes
    this.#entries.splice(this.#entries.indexOf(e), 1)
    this.#bytes -= bytes
    if (toBudget) this.#budget?.give(this, bytes)
    e.state.dispose()
    return bytes
  }
}

// KV-cell accounting for one context: which tokens each slot (llama.cpp sequence id) holds, how many cells are in
// use, and how many are promised to admitted requests. Pure bookkeeping: the only side effects are the two calls
// on the backend (the native context), made in the same place as the bookkeeping they mirror, so the two can
// never disagree.
//
// Two layouts. Unified: one pool of `nCells` cells for every slot; cells are counted by reference, so a prefix
// shared between slots with `share()` occupies its cells once (no copy). Per-sequence: each slot has a stream of
// its own (nCells / nSlots cells) that no other slot competes for; `share()` copies a prefix into the other
// stream (new cells). A slot is `busy` while a request runs on it; an idle slot's cells are a prompt cache that
// stays until its cells are needed: in a unified pool for any new work (least recently used first), in a
// per-sequence stream only for the next request on that slot.
//
// Admission reserves: a request is admitted only when the cells it may still book (its prompt's new cells plus
// the tokens it may generate) fit beside what busy slots hold and what other admitted requests were promised.
// Booked cells are taken out of their slot's reservation, so promises are never counted twice and two requests
// admitted in one tick cannot overcommit the cache.

import type { KvLayout } from './kv-layout.js'

export interface KvBackend {
  /** drops `slot`'s cells from position `from` on */
  remove(slot: number, from: number): void
  /** `dst` (empty) gets `src`'s cells [0, n): shared, not copied, in a unified cache; copied across streams */
  copy(src: number, dst: number, n: number): void
}


interface SlotCells {
  /** tokens whose KV cells this slot holds, at positions 0..n-1 */
  tokens: number[]
  /** ids of those cells, for reference counting of shared prefixes */
  cells: number[]
  busy: boolean
  /** cells promised to the request on this slot and not booked yet */
  reserved: number
  lastUsed: number
}

export function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

export class KvCells {
  readonly nCells: number
  readonly layout: KvLayout
  /** cells one slot may hold: all of them in a unified pool, its stream's share per sequence */
  readonly slotCells: number
  readonly #backend: KvBackend
  readonly #slots: SlotCells[]
  readonly #refs = new Map<number, number>()
  /** per cell, how many busy slots hold it: its size is what eviction cannot free, kept incrementally */
  readonly #busyRefs = new Map<number, number>()
  #nextCell = 0
  #reserved = 0
  #clock = 0

  constructor(nCells: number, nSlots: number, backend: KvBackend, layout: KvLayout = 'unified') {
    this.nCells = nCells
    this.layout = layout
    this.slotCells = layout === 'unified' ? nCells : Math.floor(nCells / nSlots)
    this.#backend = backend
    this.#slots = Array.from({ length: nSlots }, () => ({ tokens: [], cells: [], busy: false, reserved: 0, lastUsed: 0 }))
  }

  get nSlots(): number {
    return this.#slots.length
  }

  /** distinct cells in use, idle caches included */
  get used(): number {
    return this.#refs.size
  }

  /** cells promised to admitted requests and not booked yet */
  get reserved(): number {
    return this.#reserved
  }

  tokens(slot: number): readonly number[] {
    return this.#slots[slot]!.tokens
  }

  length(slot: number): number {
    return this.#slots[slot]!.tokens.length
  }

  isBusy(slot: number): boolean {
    return this.#slots[slot]!.busy
  }

  reservedBy(slot: number): number {
    return this.#slots[slot]!.reserved
  }

  /** distinct cells referenced by busy slots (what eviction cannot free) */
  heldByBusy(): number {
    return this.#busyRefs.size
  }

  /**
   * Whether `need` more cells can be promised without touching what busy slots hold or was promised. Per
   * sequence, a request only ever books cells of its own slot's stream, which its context limit keeps within.
   */
  canReserve(need: number): boolean {
    if (this.layout === 'per-seq') return need <= this.slotCells
    return this.heldByBusy() + this.#reserved + need <= this.nCells
  }

  /** Cells a step may fill: what the unified pool has free; per sequence, reservations keep every stream in room. */
  get free(): number {
    return this.layout === 'unified' ? this.nCells - this.#refs.size : Number.MAX_SAFE_INTEGER
  }

  /** Marks `slot` busy with `reserve` cells promised to its request. */
  acquire(slot: number, reserve: number): void {
    const s = this.#slots[slot]!
    if (s.busy) throw new Error(`slot ${slot} is already busy`)
    s.busy = true
    s.reserved = reserve
    this.#reserved += reserve
    for (const c of s.cells) this.#ref(this.#busyRefs, c)
  }

  /** The request on `slot` is done: its unused promise is returned, its cells stay as a prompt cache. */
  release(slot: number): void {
    const s = this.#slots[slot]!
    this.#reserved -= s.reserved
    s.reserved = 0
    if (s.busy) for (const c of s.cells) this.#unref(this.#busyRefs, c)
    s.busy = false
    s.lastUsed = ++this.#clock
  }

  /** Idle slots, least recently used first. */
  idleSlots(): number[] {
    const idle: number[] = []
    for (let i = 0; i < this.#slots.length; i++) if (!this.#slots[i]!.busy) idle.push(i)
    return idle.sort((a, b) => this.#slots[a]!.lastUsed - this.#slots[b]!.lastUsed)
  }

  /** The slot holding the longest prefix of `prompt` (busy or idle), and its length. */
  bestPrefix(prompt: ArrayLike<number>): { slot: number; length: number } {
    let slot = -1
    let length = 0
    for (let i = 0; i < this.#slots.length; i++) {
      const l = commonPrefix(this.#slots[i]!.tokens, prompt)
      if (l > length) {
        slot = i
        length = l
      }
    }
    return { slot, length }
  }

  /** Tokens decoded into `slot`: new cells, taken out of its reservation. */
  book(slot: number, tokens: ArrayLike<number>): void {
    const s = this.#slots[slot]!
    for (let i = 0; i < tokens.length; i++) {
      s.tokens.push(tokens[i]!)
      s.cells.push(this.#newCell(s.busy))
    }
    const taken = Math.min(s.reserved, tokens.length)
    s.reserved -= taken
    this.#reserved -= taken
  }

  /** Keeps `slot`'s first `n` cells and drops the rest (native cells included). */
  truncate(slot: number, n: number): void {
    const s = this.#slots[slot]!
    if (s.tokens.length <= n) return
    this.#backend.remove(slot, n)
    for (let i = n; i < s.cells.length; i++) {
      this.#unref(this.#refs, s.cells[i]!)
      if (s.busy) this.#unref(this.#busyRefs, s.cells[i]!)
    }
    s.tokens.length = n
    s.cells.length = n
  }

  /** Drops every cell of `slot`, also ones the bookkeeping may not know of (after a failed step). */
  clear(slot: number): void {
    this.truncate(slot, 0)
    this.#backend.remove(slot, 0)
  }

  /** `dst`'s cells become `src`'s first `n`: shared (counted once) in a unified pool, copied per sequence. */
  share(src: number, dst: number, n: number): void {
    const from = this.#slots[src]!
    const to = this.#slots[dst]!
    this.truncate(dst, 0)
    if (n <= 0) return
    try {
      this.#backend.copy(src, dst, n)
    } catch (err) {
      // a failed copy across streams leaves dst empty (native/context.cpp)
      this.#backend.remove(dst, 0)
      throw err
    }
    to.tokens = from.tokens.slice(0, n)
    if (this.layout === 'per-seq') {
      to.cells = to.tokens.map(() => this.#newCell(to.busy))
      return
    }
    to.cells = from.cells.slice(0, n)
    for (const c of to.cells) {
      this.#ref(this.#refs, c)
      if (to.busy) this.#ref(this.#busyRefs, c)
    }
  }

  /**
   * `slot`'s cells were replaced outside this bookkeeping (a saved state restored into it): it now holds
   * `tokens` at positions 0..n-1, in new cells of its own. Not taken out of its reservation: like an adopted
   * prefix, they were promised room at admission.
   */
  replaced(slot: number, tokens: ArrayLike<number>): void {
    const s = this.#slots[slot]!
    for (const c of s.cells) {
      this.#unref(this.#refs, c)
      if (s.busy) this.#unref(this.#busyRefs, c)
    }
    s.tokens = Array.from(tokens)
    s.cells = s.tokens.map(() => this.#newCell(s.busy))
  }

  /**
   * The idle slots whose caches makeRoom(need) would evict, in that order (least recently used first); empty
   * when the cells are free already. Per sequence nothing is evicted for room.
   */
  victims(need: number): number[] {
    const out: number[] = []
    if (this.layout === 'per-seq') return out
    let free = this.nCells - this.#refs.size
    if (free >= need) return out
    // cells shared with busy slots or with an earlier victim are not freed by evicting this one
    const dropped = new Map<number, number>()
    for (const slot of this.idleSlots()) {
      const s = this.#slots[slot]!
      if (s.tokens.length === 0) continue
      out.push(slot)
      for (const c of s.cells) {
        const left = (dropped.get(c) ?? this.#refs.get(c)!) - 1
        dropped.set(c, left)
        if (left === 0) free++
      }
      if (free >= need) break
    }
    return out
  }

  /** Evicts idle caches, least recently used first, until `need` cells are physically free. */
  makeRoom(need: number): boolean {
    if (this.layout === 'per-seq') return true
    if (this.nCells - this.#refs.size >= need) return true
    for (const slot of this.idleSlots()) {
      if (this.#slots[slot]!.tokens.length === 0) continue
      this.truncate(slot, 0)
      if (this.nCells - this.#refs.size >= need) return true
    }
    return false
  }

  #newCell(busy: boolean): number {
    const cell = this.#nextCell++
    this.#refs.set(cell, 1)
    if (busy) this.#busyRefs.set(cell, 1)
    return cell
  }

  #ref(refs: Map<number, number>, cell: number): void {
    refs.set(cell, (refs.get(cell) ?? 0) + 1)
  }

  #unref(refs: Map<number, number>, cell: number): void {
    const r = refs.get(cell)!
    if (r <= 1) refs.delete(cell)
    else refs.set(cell, r - 1)
  }
}

// KV-cell accounting for one context: which tokens each slot (llama.cpp sequence id) holds, how many cells are in
// use, and how many are promised to admitted requests. Pure bookkeeping: the only side effects are the two calls
// on the backend (the native context), made in the same place as the bookkeeping they mirror, so the two can
// never disagree.
//
// Cells are counted by reference: a prefix shared between slots with `share()` occupies its cells once (no copy
// in a unified cache). A slot is `busy` while a request runs on it; an idle slot's cells are a prompt cache that
// may be evicted (least recently used first) whenever cells are needed.
//
// Admission reserves: a request is admitted only when the cells it may still book (its prompt's new cells plus
// the tokens it may generate) fit beside what busy slots hold and what other admitted requests were promised.
// Booked cells are taken out of their slot's reservation, so promises are never counted twice and two requests
// admitted in one tick cannot overcommit the cache.

export interface KvBackend {
  /** drops `slot`'s cells from position `from` on */
  remove(slot: number, from: number): void
  /** `dst` (empty) gets `src`'s cells [0, n): shared, not copied, in a unified cache */
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
  readonly #backend: KvBackend
  readonly #slots: SlotCells[]
  readonly #refs = new Map<number, number>()
  /** per cell, how many busy slots hold it: its size is what eviction cannot free, kept incrementally */
  readonly #busyRefs = new Map<number, number>()
  #nextCell = 0
  #reserved = 0
  #clock = 0

  constructor(nCells: number, nSlots: number, backend: KvBackend) {
    this.nCells = nCells
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

  /** Whether `need` more cells can be promised without touching what busy slots hold or was promised. */
  canReserve(need: number): boolean {
    return this.heldByBusy() + this.#reserved + need <= this.nCells
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
      const cell = this.#nextCell++
      s.tokens.push(tokens[i]!)
      s.cells.push(cell)
      this.#refs.set(cell, 1)
      if (s.busy) this.#busyRefs.set(cell, 1)
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

  /** `dst`'s cells become `src`'s first `n` (shared, counted once). */
  share(src: number, dst: number, n: number): void {
    const from = this.#slots[src]!
    const to = this.#slots[dst]!
    this.truncate(dst, 0)
    if (n <= 0) return
    this.#backend.copy(src, dst, n)
    to.tokens = from.tokens.slice(0, n)
    to.cells = from.cells.slice(0, n)
    for (const c of to.cells) {
      this.#ref(this.#refs, c)
      if (to.busy) this.#ref(this.#busyRefs, c)
    }
  }

  /** Evicts idle caches, least recently used first, until `need` cells are physically free. */
  makeRoom(need: number): boolean {
    if (this.nCells - this.#refs.size >= need) return true
    for (const slot of this.idleSlots()) {
      if (this.#slots[slot]!.tokens.length === 0) continue
      this.truncate(slot, 0)
      if (this.nCells - this.#refs.size >= need) return true
    }
    return false
  }

  /** Drops the caches of every idle slot. */
  dropIdle(): void {
    for (const slot of this.idleSlots()) this.truncate(slot, 0)
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

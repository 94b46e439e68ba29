// One memory budget for everything hearth keeps in RAM by choice: loaded models (weights, KV cache, compute
// buffers) and the host-RAM prompt cache. Loading a model or caching a prompt asks for bytes first; what does
// not fit is refused (a model load) or makes room by evicting what its owner can give up (cached prompts, idle
// models). Pure bookkeeping: the owners measure and free their own memory.
import { freemem, totalmem } from 'node:os'

/** Something holding budgeted memory that can give some back when asked. */
export interface BudgetHolder {
  readonly name: string
  /** Frees up to `bytes` it can spare now (least valuable first); returns how many it freed. */
  giveBack?(bytes: number): number
}

export class MemoryBudget {
  readonly totalBytes: number
  readonly #held = new Map<BudgetHolder, number>()

  constructor(totalBytes: number) {
    if (!(totalBytes > 0)) throw new RangeError('a memory budget needs a positive size')
    this.totalBytes = totalBytes
  }

  /**
   * The default: what is free now, less a tenth of the machine's memory for the rest of the system, and never
   * more than 90% of the machine's memory.
   */
  static fromMachine(): MemoryBudget {
    return new MemoryBudget(Math.max(256 * 2 ** 20, Math.min(freemem() - totalmem() / 10, totalmem() * 0.9)))
  }

  get usedBytes(): number {
    let sum = 0
    for (const bytes of this.#held.values()) sum += bytes
    return sum
  }

  get freeBytes(): number {
    return this.totalBytes - this.usedBytes
  }

  heldBy(holder: BudgetHolder): number {
    return this.#held.get(holder) ?? 0
  }

  /**
   * Takes `bytes` for `holder`. When they do not fit, other holders are asked to give some back, in the order
   * given (e.g. prompt caches first, then idle models); returns false, taking nothing, if that is not enough.
   */
  take(holder: BudgetHolder, bytes: number, ask: readonly BudgetHolder[] = []): boolean {
    if (bytes <= 0) return true
    for (const other of ask) {
      const short = bytes - this.freeBytes
      if (short <= 0) break
      if (other === holder || !other.giveBack) continue
      this.give(other, Math.min(short, other.giveBack(short)))
    }
    if (bytes > this.freeBytes) return false
    this.#held.set(holder, this.heldBy(holder) + bytes)
    return true
  }

  /** Returns `bytes` (at most what `holder` holds) to the budget. */
  give(holder: BudgetHolder, bytes: number): void {
    const left = this.heldBy(holder) - Math.max(0, bytes)
    if (left > 0) this.#held.set(holder, left)
    else this.#held.delete(holder)
  }

  /** Returns everything `holder` holds. */
  release(holder: BudgetHolder): void {
    this.#held.delete(holder)
  }
}

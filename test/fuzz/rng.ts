// A seeded random source for the fuzzer: every body of a run follows from --seed, so a failure found at seed S
// comes back with seed S (bar what the server itself makes random, such as response ids).
import { mulberry32 } from '../../bench/rng.js'

export class Rng {
  readonly #next: () => number

  constructor(seed: number) {
    this.#next = mulberry32(seed)
  }

  /** uniform in [0, 1) */
  float(): number {
    return this.#next()
  }

  /** an integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#next() * (hi - lo + 1))
  }

  chance(p: number): boolean {
    return this.#next() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[Math.floor(this.#next() * items.length)]!
  }

  /** one of `choices`, each as likely as its weight */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((s, [w]) => s + w, 0)
    let at = this.#next() * total
    for (const [w, v] of choices) {
      if ((at -= w) < 0) return v
    }
    return choices.at(-1)![1]
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.#next() * (i + 1))
      ;[items[i], items[j]] = [items[j]!, items[i]!]
    }
    return items
  }

  /** a seed for a child generator, so one part's choices do not shift another's */
  fork(): Rng {
    return new Rng(Math.floor(this.#next() * 0x100000000))
  }
}

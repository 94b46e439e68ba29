// Prompts for the scenarios. Random token-id prompts are unique per request (a per-process random seed plus
// a counter), so no server's prompt cache can help where the scenario measures raw prompt work.
import { randomInt } from 'node:crypto'
import { mulberry32 } from '../rng.js'

export class RandomPrompts {
  readonly #ids: Int32Array
  #next = randomInt(2 ** 31)

  /** `ids`: the token ids prompts may use (ordinary tokens of the model's vocabulary) */
  constructor(ids: Int32Array) {
    if (ids.length < 100) throw new Error(`only ${ids.length} ordinary tokens to draw prompts from`)
    this.#ids = ids
  }

  /** `n` random token ids, different from every other prompt this process made */
  next(n: number): number[] {
    const rand = mulberry32(this.#next++)
    const out = new Array<number>(n)
    for (let i = 0; i < n; i++) out[i] = this.#ids[Math.floor(rand() * this.#ids.length)]!
    return out
  }
}

/** A request seed that differs per request but is reproducible within one run's log. */
let seedCounter = 1
export function nextSeed(): number {
  return seedCounter++
}

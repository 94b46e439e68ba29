// Moving prompts' KV cells between a context and the host-RAM prompt cache (prompt-cache.ts): saving a slot's
// cells before they are cut or evicted, restoring a saved prefix into a slot. Each call is native work on the
// decode thread, so the scheduler runs them between steps, one at a time. A save that fails only means the
// cache goes without that prompt; a restore that fails leaves the slot empty, and the prompt is computed.
import { toHearthError } from './errors.js'
import type { KvCells } from './kv-cells.js'
import type { NativeContext, NativeSeqState } from './native.js'
import type { CacheMatch, PromptCache } from './prompt-cache.js'

export type SaverContext = Pick<NativeContext, 'seqSave' | 'seqRestore'>

export class PromptSaver {
  readonly ram: PromptCache<NativeSeqState>
  readonly #ctx: SaverContext
  readonly #kv: KvCells

  constructor(ctx: SaverContext, kv: KvCells, ram: PromptCache<NativeSeqState>) {
    this.#ctx = ctx
    this.#kv = kv
    this.ram = ram
  }

  /** Whether cutting `slot`'s cells to `keep` would lose tokens the cache should keep. */
  worthSaving(slot: number, keep: number): boolean {
    const n = this.#kv.length(slot)
    return n > keep && n >= this.ram.minTokens && !this.ram.covers(this.#kv.tokens(slot))
  }

  /** An idle slot whose cells the next step (wanting `want` cells) will evict and that is worth saving first. */
  victimToSave(want: number, tried: Set<number>): number | null {
    for (const slot of this.#kv.victims(want)) {
      if (tried.has(slot) || !this.worthSaving(slot, 0)) continue
      tried.add(slot)
      return slot
    }
    return null
  }

  /** Saves `slot`'s cells to the cache. */
  async save(slot: number): Promise<void> {
    const tokens = this.#kv.tokens(slot).slice()
    if (this.ram.covers(tokens)) return
    try {
      this.ram.add(tokens, await this.#ctx.seqSave(slot))
    } catch (err) {
      process.emitWarning(`hearth: saving a prompt to the RAM cache failed: ${toHearthError(err).message}`)
    }
  }

  /**
   * Restores `keep` tokens of a saved prefix into `slot`, replacing its cells; false (the slot then empty) when it
   * could not be. `gone()` says whether the request went away meanwhile.
   */
  async restore(slot: number, match: CacheMatch<NativeSeqState>, keep: number, gone: () => boolean): Promise<boolean> {
    // the restore writes all of the saved cells before cutting them to `keep`: a unified pool needs room for them,
    // and the idle caches that make it are saved first like any other
    if (this.#kv.layout === 'unified') {
      for (const victim of this.#kv.victims(match.tokens.length)) if (this.worthSaving(victim, 0)) await this.save(victim)
      if (gone() || !this.#kv.makeRoom(match.tokens.length)) return false
    }
    try {
      await this.#ctx.seqRestore(slot, match.state, keep)
    } catch (err) {
      this.#kv.replaced(slot, [])
      process.emitWarning(`hearth: restoring a prompt from the RAM cache failed, computing it: ${toHearthError(err).message}`)
      return false
    }
    this.#kv.replaced(slot, match.tokens.subarray(0, keep))
    this.ram.hit(match, keep)
    return true
  }
}

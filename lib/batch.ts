// Building one decode step's batch: the next token of every generating sequence first (a stream never waits for a
// prompt), then chunks of waiting prompts in admission order within the step's token budget (chunked prefill).
// The tokens are laid out in sequence-id order.
// Pure: no KV or native calls; the scheduler books what the step decoded once it settles.

export interface BatchMember {
  /** the llama.cpp sequence id (slot) its tokens go to */
  readonly slot: number
  /** the prompt; tokens from `booked` on still need decoding while prefilling */
  readonly prompt: Int32Array
  /** tokens already in the slot's KV cells (its next position) */
  readonly booked: number
  /** a sampled token that is not decoded yet, or -1 */
  readonly pending: number
  /** still decoding its prompt (nothing sampled yet) */
  readonly prefilling: boolean
  /** waits for another sequence to finish computing a prefix it will share: no tokens this step */
  readonly waiting: boolean
}

export interface BatchEntry<M extends BatchMember> {
  member: M
  /** the tokens this member decodes in the step */
  tokens: Int32Array
  /** index into the step's sampled tokens, or -1 when this entry is not sampled (a prompt chunk that is not the last) */
  sample: number
}

export interface Batch<M extends BatchMember> {
  tokens: Int32Array
  positions: Int32Array
  seqIds: Int32Array
  /** batch indices whose logits are sampled, one per sampled entry */
  sampleAt: Int32Array
  entries: BatchEntry<M>[]
}

/**
 * The step for `members` (in admission order) within `nBatch` tokens and `nFree` free KV cells; null when no
 * member has anything to decode.
 */
export function buildBatch<M extends BatchMember>(members: readonly M[], nBatch: number, nFree: number): Batch<M> | null {
  const entries: BatchEntry<M>[] = []
  let budget = Math.min(nBatch, nFree)
  let nSample = 0
  for (const m of members) {
    if (m.pending < 0 || budget <= 0) continue
    entries.push({ member: m, tokens: Int32Array.of(m.pending), sample: nSample++ })
    budget--
  }
  for (const m of members) {
    if (budget <= 0) break
    if (!m.prefilling || m.waiting) continue
    const n = Math.min(budget, m.prompt.length - m.booked)
    if (n <= 0) continue
    const last = m.booked + n === m.prompt.length
    entries.push({ member: m, tokens: m.prompt.subarray(m.booked, m.booked + n), sample: last ? nSample++ : -1 })
    budget -= n
  }
  if (entries.length === 0) return null
  // laid out by sequence id: with one KV stream per sequence llama.cpp splits a batch into ubatches of
  // consecutive sequence ids (split_equal), and every extra ubatch is another pass over the weights
  entries.sort((a, b) => a.member.slot - b.member.slot)
  const total = entries.reduce((s, e) => s + e.tokens.length, 0)
  const tokens = new Int32Array(total)
  const positions = new Int32Array(total)
  const seqIds = new Int32Array(total)
  const sampleAt = new Int32Array(nSample)
  let i = 0
  for (const e of entries) {
    const start = e.member.booked
    tokens.set(e.tokens, i)
    for (let k = 0; k < e.tokens.length; k++, i++) {
      positions[i] = start + k
      seqIds[i] = e.member.slot
    }
    if (e.sample >= 0) sampleAt[e.sample] = i - 1
  }
  return { tokens, positions, seqIds, sampleAt, entries }
}

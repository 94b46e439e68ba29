// Building one decode step's batch: the next token of every generating sequence first (a stream never waits for a
// prompt), then chunks of waiting prompts in admission order within the step's token budget (chunked prefill).
// The tokens are laid out in sequence-id order.
// A prompt's media span (lib/media.ts) is decoded whole from its embeddings, before that member's text in the same
// step, once it is encoded; the text before a span is never in the same step as the span.
// Pure: no KV or native calls; the scheduler books what the step decoded once it settles.
import type { MediaSpan } from './media.js'
import type { NativeMediaInput } from './native.js'

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
  /** waits for another sequence to finish computing a prefix it will share, or for a media span's encoding */
  readonly waiting: boolean
  /** the prompt's media spans, in order */
  readonly media?: readonly MediaSpan[]
}

export interface BatchEntry<M extends BatchMember> {
  member: M
  /** the tokens this member decodes in the step */
  tokens: Int32Array
  /** index into the step's sampled tokens, or -1 when this entry is not sampled (a prompt chunk that is not the last) */
  sample: number
  /** the position of its first token */
  pos: number
  /** set when these positions are a media span, decoded from its embeddings (`tokens` are its pseudo-tokens) */
  media?: MediaSpan
}

export interface Batch<M extends BatchMember> {
  tokens: Int32Array
  positions: Int32Array
  seqIds: Int32Array
  /** batch indices whose logits are sampled, one per sampled entry */
  sampleAt: Int32Array
  entries: BatchEntry<M>[]
  /** media decoded before the tokens */
  media: NativeMediaInput[]
}

/** The span of `spans` that starts at `at`, if any. */
export function spanAt(spans: readonly MediaSpan[] | undefined, at: number): MediaSpan | undefined {
  return spans?.find((s) => s.start === at)
}

/** The largest position <= n that does not fall inside a span (a prefix of cells never ends mid-image). */
export function clampToSpans(spans: readonly MediaSpan[] | undefined, n: number): number {
  if (!spans) return n
  for (const s of spans) if (n > s.start && n < s.end) return s.start
  return n
}

/** Where the text from `at` ends: the next span's start, or the prompt's end. */
function textEnd(m: BatchMember, at: number): number {
  const next = m.media?.find((s) => s.start >= at)
  return next ? next.start : m.prompt.length
}

/**
 * The step for `members` (in admission order) within `nBatch` tokens and `nFree` free KV cells; null when no
 * member has anything to decode.
 */
export function buildBatch<M extends BatchMember>(members: readonly M[], nBatch: number, nFree: number): Batch<M> | null {
  const entries: BatchEntry<M>[] = []
  const media: NativeMediaInput[] = []
  let budget = Math.min(nBatch, nFree)
  let free = nFree
  let nSample = 0
  let prefilled = false
  for (const m of members) {
    if (m.pending < 0 || budget <= 0) continue
    entries.push({ member: m, tokens: Int32Array.of(m.pending), sample: nSample++, pos: m.booked })
    budget--
    free--
  }
  for (const m of members) {
    if (!m.prefilling || m.waiting) continue
    let at = m.booked
    const span = spanAt(m.media, at)
    if (span) {
      // whole, and only when it fits the free cells; past the token budget only as the step's first prefill
      if (!span.embeddings || span.length > free || (span.length > budget && prefilled)) continue
      entries.push({ member: m, tokens: m.prompt.subarray(at, span.end), sample: -1, pos: at, media: span })
      media.push({ seq: m.slot, pos: at, chunk: span.chunk, embeddings: span.embeddings })
      budget -= span.length
      free -= span.length
      prefilled = true
      at = span.end
    }
    if (budget <= 0) continue
    const n = Math.min(budget, textEnd(m, at) - at)
    if (n <= 0) continue
    const last = at + n === m.prompt.length
    entries.push({ member: m, tokens: m.prompt.subarray(at, at + n), sample: last ? nSample++ : -1, pos: at })
    budget -= n
    free -= n
    prefilled = true
  }
  if (entries.length === 0) return null
  // laid out by sequence id: with one KV stream per sequence llama.cpp splits a batch into ubatches of
  // consecutive sequence ids (split_equal), and every extra ubatch is another pass over the weights
  entries.sort((a, b) => a.member.slot - b.member.slot)
  const text = entries.filter((e) => !e.media)
  const total = text.reduce((s, e) => s + e.tokens.length, 0)
  const tokens = new Int32Array(total)
  const positions = new Int32Array(total)
  const seqIds = new Int32Array(total)
  const sampleAt = new Int32Array(nSample)
  let i = 0
  for (const e of text) {
    tokens.set(e.tokens, i)
    for (let k = 0; k < e.tokens.length; k++, i++) {
      positions[i] = e.pos + k
      seqIds[i] = e.member.slot
    }
    if (e.sample >= 0) sampleAt[e.sample] = i - 1
  }
  return { tokens, positions, seqIds, sampleAt, entries, media }
}

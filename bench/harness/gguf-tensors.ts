// What the benchmarks read from a model's GGUF header: the weight bytes one decode step streams from memory,
// and the ordinary token ids random prompts may use.
import type { GGUFHeader } from '../gguf-reader.js'

/**
 * Bytes of weights one decode step reads: every tensor, except that an embedding table which is not also
 * the output matrix contributes one row per token (its full size only when the output layer is tied to it).
 */
export function weightBytesPerToken(h: GGUFHeader): number {
  const tied = !h.tensors.some((t) => t.name === 'output.weight')
  let total = 0
  for (const t of h.tensors) {
    if (t.name === 'token_embd.weight' && !tied) total += t.bytes / (t.dims[1] ?? 1)
    else total += t.bytes
  }
  return total
}

/** Ids of ordinary tokens (type 1): no control, byte or unused ids, which servers may treat specially. */
export function normalTokenIds(h: GGUFHeader): Int32Array {
  const types = h.metadata.get('tokenizer.ggml.token_type')
  if (!Array.isArray(types)) throw new Error('the model has no tokenizer.ggml.token_type array')
  const ids: number[] = []
  types.forEach((t, id) => {
    if (t === 1) ids.push(id)
  })
  return Int32Array.from(ids)
}

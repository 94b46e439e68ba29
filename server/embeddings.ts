// POST /v1/embeddings: pooled, normalised vectors; float or base64; `dimensions` truncates and re-normalises.
import { invalidParam } from '../lib/errors.js'
import type { Reply } from './http.js'
import { EmbeddingRequest, IGNORED, validator } from './schemas.js'
import type { ServerState } from './state.js'

const validate = validator(EmbeddingRequest, IGNORED.embeddings)
const MAX_INPUTS = 2048

function truncate(v: Float32Array, dims: number): Float32Array {
  if (dims >= v.length) return v
  const out = v.slice(0, dims)
  const norm = Math.hypot(...out)
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i]! /= norm
  return out
}

export async function embeddings(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  if (Array.isArray(body.input) && body.input.length > MAX_INPUTS) throw invalidParam('input', `input takes at most ${MAX_INPUTS} items`)
  if (body.input === '' || (Array.isArray(body.input) && body.input.some((x) => x === ''))) {
    throw invalidParam('input', 'input must not contain empty strings')
  }
  const model = await state.useModel(reply, body.model, { purpose: 'embed', ttl: body.ttl })
  const dims = body.dimensions ?? null
  if (dims !== null && (dims < 1 || dims > model.facts.nEmbd)) {
    throw invalidParam('dimensions', `dimensions must be between 1 and ${model.facts.nEmbd}`)
  }
  const inputs = await model.tokenizePrompts(body.input, 'input', model.embeddingContextSize)
  // a client that goes away drops its request from the embedding queue: its remaining chunks never run
  const gone = new AbortController()
  reply.onAbort(() => gone.abort())
  const { vectors, promptTokens: nTokens } = await model.embed(inputs, { signal: gone.signal })
  reply.promptTokens = nTokens
  const base64 = body.encoding_format === 'base64'
  reply.json(200, {
    object: 'list',
    data: vectors.map((v, index) => {
      const out = dims !== null ? truncate(v, dims) : v
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64') : Array.from(out),
      }
    }),
    model: model.id,
    usage: { prompt_tokens: nTokens, total_tokens: nTokens },
  })
}

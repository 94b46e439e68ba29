// The end every Chat Completions and Completions stream shares: once the generation's result is known, the
// include_usage chunk (choices [] and the usage) when asked for, or an error chunk if generation failed, then
// [DONE]. Nothing is written to a client that has gone.
import type { GenerationResult } from '../lib/generation.js'
import { toHearthError } from '../lib/errors.js'
import type { Reply, SseWriter } from './http.js'

export function errorObject(err: unknown): { message: string; type: string; param: string | null; code: string } {
  const e = toHearthError(err)
  return { message: e.message, type: e.type, param: e.param, code: e.code }
}

export async function streamTail(
  sse: SseWriter,
  reply: Reply,
  result: Promise<GenerationResult>,
  usageChunk: ((r: GenerationResult) => unknown) | null,
): Promise<void> {
  try {
    const r = await result
    if (usageChunk) sse.send(usageChunk(r))
  } catch (err) {
    if (reply.open) sse.send({ error: errorObject(err) })
  }
  sse.send('[DONE]')
  sse.end()
}

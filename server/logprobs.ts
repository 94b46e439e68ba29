// Sampled tokens as OpenAI's log-probability objects: chat's `logprobs.content` entries and the legacy
// completions `logprobs` block. A token's text is its raw bytes decoded (so a partial UTF-8 character shows as
// U+FFFD, as OpenAI does) and `bytes` carries those bytes.
import type { Model } from '../lib/model.js'
import type { TokenInfo } from '../lib/sequence.js'

const utf8 = new TextDecoder()

export interface TokenLogprobEntry {
  token: string
  logprob: number
  bytes: number[]
}

export type ChatLogprobEntry = TokenLogprobEntry & { top_logprobs: TokenLogprobEntry[] }

function tokenEntry(model: Model, id: number, logprob: number): TokenLogprobEntry {
  const bytes = model.pieces.bytes(id)
  return { token: utf8.decode(bytes), logprob, bytes: [...bytes] }
}

/** Chat-style logprobs content (also the Responses API's output_text logprobs). */
export function chatLogprobContent(model: Model, tokens: TokenInfo[]): ChatLogprobEntry[] {
  return tokens.map((t) => ({
    ...tokenEntry(model, t.id, t.logprob ?? 0),
    top_logprobs: t.top.map((a) => tokenEntry(model, a.id, a.logprob)),
  }))
}

/** Legacy completions logprobs: tokens, token_logprobs, top_logprobs ({text: logprob}), text_offset from `offset`. */
export function legacyLogprobs(model: Model, tokens: TokenInfo[], offset: number) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] }
  let at = offset
  for (const t of tokens) {
    const e = tokenEntry(model, t.id, t.logprob ?? 0)
    out.tokens.push(e.token)
    out.token_logprobs.push(e.logprob)
    out.top_logprobs.push(Object.fromEntries(t.top.map((a) => [tokenEntry(model, a.id, a.logprob).token, a.logprob])))
    out.text_offset.push(at)
    at += e.token.length
  }
  return out
}

// One batch of N streams sent at once (scenarios 3 and 6): every stream's random prompt and generated tokens, and
// what the batch measured — aggregate generated tok/s from the first request sent to the last token received (so
// prompt work counts), the gaps between each stream's tokens pooled over all streams, and time to first token.
import { completionBody, type Turn } from './session.js'
import type { RandomPrompts } from './prompts.js'
import { percentile, sum } from './stats.js'
import { expectTokens, firstTokenAt, lastTokenAt, streamRequest } from './stream-client.js'

export interface BatchFigures {
  tokens: number
  seconds: number
  tokS: number
  gapP50Ms: number
  gapP99Ms: number
  ttftP50Ms: number
}

export async function concurrentBatch(turn: Turn, prompts: RandomPrompts, n: number, promptTokens: number, genTokens: number): Promise<BatchFigures> {
  const bodies = Array.from({ length: n }, () => completionBody(prompts.next(promptTokens), genTokens))
  const results = await Promise.all(bodies.map((b) => streamRequest(turn.agent, turn.server.url, '/v1/completions', b)))
  for (const r of results) expectTokens(r, genTokens, turn.kind)
  const start = Math.min(...results.map((r) => r.sentAt))
  const end = Math.max(...results.map(lastTokenAt))
  const tokens = sum(results.map((r) => r.completionTokens))
  const gaps = results.flatMap((r) => r.tokenTimes.slice(1).map((t, i) => t - r.tokenTimes[i]!))
  return {
    tokens,
    seconds: (end - start) / 1000,
    tokS: (tokens / (end - start)) * 1000,
    gapP50Ms: percentile(gaps, 50),
    gapP99Ms: percentile(gaps, 99),
    ttftP50Ms: percentile(results.map((r) => firstTokenAt(r) - r.sentAt), 50),
  }
}

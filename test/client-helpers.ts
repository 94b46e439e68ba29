// What the agent-client tests (test/22-clients-*) share: a fetch that records every request body a client sends
// (and can rewrite it first), and the small tool and schema they all use, bounded so that a forced call or a
// json_schema answer from a random-weight model is always valid and short.
import { z } from 'zod'

export interface SentRequest {
  url: string
  body: Record<string, unknown>
}

/**
 * A fetch for a client's constructor that keeps each request's URL and JSON body in `sent`; `rewrite` may change a
 * body before it goes (its index among the requests sent so far is given).
 */
export function recordingFetch(rewrite?: (body: Record<string, unknown>, index: number) => Record<string, unknown>) {
  const sent: SentRequest[] = []
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    if (typeof init?.body === 'string') {
      let body = JSON.parse(init.body) as Record<string, unknown>
      if (rewrite) body = rewrite(body, sent.length)
      sent.push({ url, body })
      init = { ...init, body: JSON.stringify(body) }
    }
    return fetch(input, init)
  }
  return { fetch: fetchFn, sent }
}

/** The arguments every test tool takes: an enum, so that any forced call is valid whatever the weights. */
export const WeatherArgs = z.object({ city: z.enum(['Paris', 'Rome']) })

export const weatherParameters: Record<string, unknown> = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } },
  required: ['city'],
  additionalProperties: false,
}

/** A structured answer with bounded fields (an enum and a small integer range). */
export const Verdict = z.object({ answer: z.enum(['yes', 'no']), score: z.number().int().min(0).max(9) })

/**
 * Random weights never end a plain-text turn: they write until max_tokens. A stop on letters that the forced
 * calls above cannot contain (no tool name, key, enum value or call marker of the test models has b, d, f or k)
 * ends the plain answer of a later turn with finish_reason "stop", as a trained model's end of turn would, and
 * leaves the forced call whole.
 */
export const PLAIN_TURN_STOPS = ['b', 'd', 'f', 'k']

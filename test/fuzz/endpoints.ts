// The endpoints under fuzz and a valid request for each, drawn at random from what the server accepts:
// the starting point every mutation changes.
import { obj, type FuzzObject, type FuzzValue } from './fuzz-value.js'
import type { Rng } from './rng.js'

export const ENDPOINTS = [
  'chat', 'completions', 'embeddings', 'responses', 'responses-get', 'responses-delete', 'models', 'model', 'health', 'metrics',
] as const
export type EndpointName = (typeof ENDPOINTS)[number]

export const ENDPOINT_ROUTES: Record<EndpointName, { method: 'GET' | 'POST' | 'DELETE'; path: string }> = {
  chat: { method: 'POST', path: '/v1/chat/completions' },
  completions: { method: 'POST', path: '/v1/completions' },
  embeddings: { method: 'POST', path: '/v1/embeddings' },
  responses: { method: 'POST', path: '/v1/responses' },
  'responses-get': { method: 'GET', path: '/v1/responses/{id}' },
  'responses-delete': { method: 'DELETE', path: '/v1/responses/{id}' },
  models: { method: 'GET', path: '/v1/models' },
  model: { method: 'GET', path: '/v1/models/{id}' },
  health: { method: 'GET', path: '/health' },
  metrics: { method: 'GET', path: '/metrics' },
}

export const POST_ENDPOINTS = ['chat', 'completions', 'embeddings', 'responses'] as const
export type PostEndpoint = (typeof POST_ENDPOINTS)[number]
export const GENERATING: readonly EndpointName[] = ['chat', 'completions', 'responses']

export function isPost(e: EndpointName): e is PostEndpoint {
  return (POST_ENDPOINTS as readonly string[]).includes(e)
}

/** The server's limits in a default run: small, so they are easy to reach. */
export const DEFAULT_LIMITS = { ctx: 256, parallel: 4, maxQueue: 16, bodyLimit: 2 * 1024 * 1024 } as const

/** What generators need to know about the server: the model, its vocabulary, responses it has stored. */
export interface FuzzContext {
  modelId: string
  nVocab: number
  nEmbd: number
  /** tokens one sequence holds (--ctx) */
  nCtx: number
  bodyLimit: number
  /** ids of responses the server stored (and may since have deleted) */
  responseIds: string[]
}

/** Every field each POST schema knows (server/schemas.ts), for "add a known field" mutations. */
const SAMPLING_FIELDS = [
  'model', 'temperature', 'top_p', 'top_k', 'min_p', 'presence_penalty', 'frequency_penalty', 'repeat_penalty', 'repeat_last_n',
  'logit_bias', 'seed', 'stream', 'stream_options', 'ignore_eos', 'grammar', 'user',
]
export const KNOWN_FIELDS: Record<PostEndpoint, string[]> = {
  chat: [...SAMPLING_FIELDS, 'messages', 'max_tokens', 'max_completion_tokens', 'n', 'stop', 'logprobs', 'top_logprobs', 'response_format', 'tools', 'tool_choice', 'reasoning_effort'],
  completions: [...SAMPLING_FIELDS, 'prompt', 'max_tokens', 'n', 'best_of', 'stop', 'echo', 'logprobs', 'suffix'],
  embeddings: ['model', 'input', 'encoding_format', 'dimensions', 'user'],
  responses: [
    ...SAMPLING_FIELDS, 'input', 'instructions', 'max_output_tokens', 'previous_response_id', 'store', 'reasoning', 'text', 'tools', 'tool_choice',
    'metadata', 'parallel_tool_calls', 'truncation', 'top_logprobs',
  ],
}

const WORDS = ['It', 'is', 'a', 'truth', 'universally', 'acknowledged', 'the', 'LORD', 'said', 'Elizabeth', 'Darcy', 'and', 'in', 'beginning', 'of', 'house']

export function words(rng: Rng, lo = 1, hi = 8): string {
  return Array.from({ length: rng.int(lo, hi) }, () => rng.pick(WORDS)).join(' ')
}

function tokenIds(rng: Rng, ctx: FuzzContext, lo = 1, hi = 10): number[] {
  return Array.from({ length: rng.int(lo, hi) }, () => rng.int(3, ctx.nVocab - 1))
}

/** Optional sampling fields, each present or not, always in range. */
function sampling(rng: Rng, ctx: FuzzContext, stream: boolean): [string, FuzzValue][] {
  const f: [string, FuzzValue][] = []
  const maybe = (p: number, k: string, v: () => FuzzValue) => rng.chance(p) && f.push([k, v()])
  maybe(0.5, 'model', () => ctx.modelId)
  maybe(0.4, 'temperature', () => rng.pick([0, 0.2, 0.8, 1, 1.5, 2]))
  maybe(0.2, 'top_p', () => rng.pick([0, 0.5, 0.95, 1]))
  maybe(0.2, 'top_k', () => rng.pick([0, 1, 40, 1000]))
  maybe(0.2, 'min_p', () => rng.pick([0, 0.05, 1]))
  maybe(0.15, 'presence_penalty', () => rng.pick([-2, 0, 1.5]))
  maybe(0.15, 'frequency_penalty', () => rng.pick([-2, 0, 2]))
  maybe(0.15, 'repeat_penalty', () => rng.pick([0.01, 1, 1.3, 10]))
  maybe(0.1, 'repeat_last_n', () => rng.pick([-1, 0, 64]))
  maybe(0.2, 'seed', () => rng.int(0, 2 ** 31))
  maybe(0.15, 'logit_bias', () => obj(Array.from({ length: rng.int(0, 4) }, () => [String(rng.int(0, ctx.nVocab - 1)), rng.pick([-100, -1, 0, 5, 100])])))
  maybe(0.1, 'ignore_eos', () => rng.chance(0.5))
  maybe(0.05, 'grammar', () => rng.pick(['root ::= "yes" | "no"', 'root ::= [a-z ]+', 'root ::= ("a" | "b")*']))
  maybe(0.05, 'user', () => 'fuzz-user')
  f.push(['stream', stream])
  if (stream) maybe(0.5, 'stream_options', () => ({ include_usage: rng.chance(0.5) }))
  return f
}

function stop(rng: Rng): FuzzValue {
  return rng.chance(0.5) ? rng.pick(['.', '\n', 'the']) : Array.from({ length: rng.int(0, 4) }, () => rng.pick(['.', ',', 'LORD', ' and']))
}

function chatMessages(rng: Rng): FuzzValue[] {
  const msgs: FuzzValue[] = []
  if (rng.chance(0.3)) msgs.push({ role: rng.pick(['system', 'developer']), content: words(rng) })
  const turns = rng.int(0, 2)
  for (let i = 0; i < turns; i++) msgs.push({ role: 'user', content: words(rng) }, { role: 'assistant', content: words(rng) })
  msgs.push({ role: 'user', content: rng.chance(0.8) ? words(rng) : [{ type: 'text', text: words(rng) }, { type: 'text', text: words(rng) }] })
  return msgs
}

function chatTool(rng: Rng): FuzzValue {
  return { type: 'function', function: { name: rng.pick(['get_weather', 'search']), description: words(rng), parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } }
}

/** A valid request body for a POST endpoint. */
export function validBody(e: PostEndpoint, rng: Rng, ctx: FuzzContext): FuzzObject {
  const stream = e !== 'embeddings' && rng.chance(0.5)
  const f: [string, FuzzValue][] = []
  const maybe = (p: number, k: string, v: () => FuzzValue) => rng.chance(p) && f.push([k, v()])
  switch (e) {
    case 'chat':
      f.push(['messages', chatMessages(rng)], ...sampling(rng, ctx, stream))
      f.push([rng.chance(0.8) ? 'max_tokens' : 'max_completion_tokens', rng.int(1, 16)])
      maybe(0.2, 'n', () => rng.int(1, 3))
      maybe(0.2, 'stop', () => stop(rng))
      if (rng.chance(0.2)) f.push(['logprobs', true], ['top_logprobs', rng.int(0, 5)])
      // a JSON format is a grammar of its own: with `grammar` it is a 400 by design
      if (!f.some(([k]) => k === 'grammar')) maybe(0.15, 'response_format', () => ({ type: rng.pick(['text', 'json_object']) }))
      if (rng.chance(0.15)) f.push(['tools', [chatTool(rng)]], ['tool_choice', rng.pick(['auto', 'none'])])
      maybe(0.05, 'reasoning_effort', () => rng.pick(['low', 'medium', 'high']))
      break
    case 'completions': {
      const prompt = rng.weighted<() => FuzzValue>([
        [4, () => words(rng)],
        [2, () => Array.from({ length: rng.int(1, 3) }, () => words(rng))],
        [2, () => tokenIds(rng, ctx)],
        [1, () => Array.from({ length: rng.int(1, 3) }, () => tokenIds(rng, ctx))],
      ])()
      f.push(['prompt', prompt], ...sampling(rng, ctx, stream), ['max_tokens', rng.int(1, 16)])
      maybe(0.2, 'n', () => rng.int(1, 2))
      maybe(0.2, 'stop', () => stop(rng))
      maybe(0.15, 'echo', () => true)
      if (!f.some(([k]) => k === 'echo')) maybe(0.2, 'logprobs', () => rng.int(0, 5))
      break
    }
    case 'embeddings': {
      const input = rng.weighted<() => FuzzValue>([
        [4, () => words(rng)],
        [2, () => Array.from({ length: rng.int(1, 4) }, () => words(rng))],
        [1, () => tokenIds(rng, ctx)],
        [1, () => Array.from({ length: rng.int(1, 3) }, () => tokenIds(rng, ctx))],
      ])()
      f.push(['input', input])
      maybe(0.5, 'model', () => ctx.modelId)
      maybe(0.3, 'encoding_format', () => rng.pick(['float', 'base64']))
      maybe(0.2, 'dimensions', () => rng.int(1, ctx.nEmbd))
      maybe(0.1, 'user', () => 'fuzz-user')
      break
    }
    case 'responses': {
      const input = rng.chance(0.5)
        ? words(rng)
        : [
            ...(rng.chance(0.3) ? [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: words(rng) }] }] : []),
            { type: 'message', role: 'user', content: rng.chance(0.5) ? words(rng) : [{ type: 'input_text', text: words(rng) }] },
          ]
      f.push(['input', input], ...sampling(rng, ctx, stream), ['max_output_tokens', rng.int(1, 16)])
      maybe(0.3, 'instructions', () => words(rng))
      if (ctx.responseIds.length) maybe(0.2, 'previous_response_id', () => rng.pick(ctx.responseIds))
      maybe(0.3, 'store', () => rng.chance(0.8))
      maybe(0.1, 'text', () => ({ format: { type: rng.pick(['text', 'json_object']) } }))
      maybe(0.1, 'tools', () => [{ type: 'function', name: 'search', description: 'x', parameters: { type: 'object', properties: {} } }])
      maybe(0.1, 'metadata', () => ({ k: 'v' }))
      maybe(0.1, 'top_logprobs', () => rng.int(0, 5))
      maybe(0.05, 'truncation', () => 'disabled')
      maybe(0.05, 'parallel_tool_calls', () => rng.chance(0.5))
      maybe(0.05, 'reasoning', () => ({ effort: 'low' }))
      break
    }
  }
  return obj(f)
}

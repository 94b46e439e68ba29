// Request bodies of every endpoint as typebox schemas, compiled once. They check types and shapes only;
// ranges and cross-field rules live in lib/params.ts and the endpoint modules. The sloppy-but-common forms are
// accepted: content null or parts, stop as a string or a list, max_completion_tokens for max_tokens. A top-level
// field that is neither in the schema nor in the endpoint's list of fields known to be harmless to ignore is a 400
// (as OpenAI answers "Unrecognized request argument"), so nothing that would change the answer is silently dropped.
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { HearthError, invalidParam } from '../lib/errors.js'

const Num = Type.Union([Type.Number(), Type.Null()])
const Int = Type.Union([Type.Integer(), Type.Null()])
const Bool = Type.Union([Type.Boolean(), Type.Null()])
const Str = Type.Union([Type.String(), Type.Null()])
const Stop = Type.Union([Type.String(), Type.Array(Type.String()), Type.Null()])
const Obj = Type.Record(Type.String(), Type.Unknown())

/** Sampling fields shared by chat, completions and responses (OpenAI names plus llama.cpp/LM Studio extras). */
const sampling = {
  model: Type.Optional(Str),
  temperature: Type.Optional(Num),
  top_p: Type.Optional(Num),
  top_k: Type.Optional(Int),
  min_p: Type.Optional(Num),
  presence_penalty: Type.Optional(Num),
  frequency_penalty: Type.Optional(Num),
  repeat_penalty: Type.Optional(Num),
  repeat_last_n: Type.Optional(Int),
  logit_bias: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Number()), Type.Null()])),
  seed: Type.Optional(Int),
  stream: Type.Optional(Bool),
  stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Bool) }), Type.Null()])),
  ignore_eos: Type.Optional(Bool),
  grammar: Type.Optional(Str),
  user: Type.Optional(Str),
  /** LM Studio's idle TTL in seconds for a model this request loads (JIT) */
  ttl: Type.Optional(Num),
}

/**
 * Fields accepted and ignored because they never change the answer (documented in the README): caching and
 * routing hints, attribution, OpenAI's service tiers, llama-server's cache_prompt (hearth always reuses cached
 * prefixes, with identical output).
 */
const IGNORED_EVERYWHERE = ['service_tier', 'prompt_cache_key', 'safety_identifier', 'cache_prompt']
export const IGNORED = {
  chat: [...IGNORED_EVERYWHERE, 'store', 'metadata', 'prediction'],
  completions: IGNORED_EVERYWHERE,
  embeddings: IGNORED_EVERYWHERE,
  responses: [...IGNORED_EVERYWHERE, 'include', 'stream_options'],
}

const ContentPart = Type.Object({ type: Type.String() })
const Content = Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()])

const ChatMessage = Type.Object({
  role: Type.String(),
  content: Type.Optional(Content),
  name: Type.Optional(Str),
  tool_calls: Type.Optional(Type.Union([Type.Array(Obj), Type.Null()])),
  tool_call_id: Type.Optional(Str),
})

const ResponseFormat = Type.Object({
  type: Type.String(),
  json_schema: Type.Optional(Obj),
})

export const ChatCompletionRequest = Type.Object({
  ...sampling,
  messages: Type.Array(ChatMessage),
  max_tokens: Type.Optional(Int),
  max_completion_tokens: Type.Optional(Int),
  n: Type.Optional(Int),
  stop: Type.Optional(Stop),
  logprobs: Type.Optional(Bool),
  top_logprobs: Type.Optional(Int),
  response_format: Type.Optional(Type.Union([ResponseFormat, Type.Null()])),
  tools: Type.Optional(Type.Union([Type.Array(Obj), Type.Null()])),
  tool_choice: Type.Optional(Type.Union([Type.String(), Obj, Type.Null()])),
  parallel_tool_calls: Type.Optional(Bool),
  reasoning_effort: Type.Optional(Str),
  reasoning_format: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('auto'), Type.Literal('deepseek'), Type.Literal('deepseek-legacy'), Type.Null()])),
})
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>

const TokenIds = Type.Array(Type.Integer())

export const CompletionRequest = Type.Object({
  ...sampling,
  prompt: Type.Union([Type.String(), Type.Array(Type.String()), TokenIds, Type.Array(TokenIds)]),
  max_tokens: Type.Optional(Int),
  n: Type.Optional(Int),
  best_of: Type.Optional(Int),
  stop: Type.Optional(Stop),
  echo: Type.Optional(Bool),
  logprobs: Type.Optional(Int),
  suffix: Type.Optional(Str),
})
export type CompletionRequest = Static<typeof CompletionRequest>

export const EmbeddingRequest = Type.Object({
  model: Type.Optional(Str),
  input: Type.Union([Type.String(), Type.Array(Type.String()), TokenIds, Type.Array(TokenIds)]),
  encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64'), Type.Null()])),
  dimensions: Type.Optional(Int),
  user: Type.Optional(Str),
  ttl: Type.Optional(Num),
})
export type EmbeddingRequest = Static<typeof EmbeddingRequest>

const InputItem = Type.Object({ type: Type.Optional(Type.String()), role: Type.Optional(Type.String()) })

export const ResponseRequest = Type.Object({
  ...sampling,
  input: Type.Union([Type.String(), Type.Array(InputItem)]),
  instructions: Type.Optional(Str),
  max_output_tokens: Type.Optional(Int),
  previous_response_id: Type.Optional(Str),
  store: Type.Optional(Bool),
  reasoning: Type.Optional(Type.Union([Type.Object({ effort: Type.Optional(Str), summary: Type.Optional(Str) }), Type.Null()])),
  text: Type.Optional(Type.Union([Type.Object({ format: Type.Optional(ResponseFormat) }), Type.Null()])),
  tools: Type.Optional(Type.Union([Type.Array(Obj), Type.Null()])),
  tool_choice: Type.Optional(Type.Union([Type.String(), Obj, Type.Null()])),
  metadata: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()])),
  parallel_tool_calls: Type.Optional(Bool),
  truncation: Type.Optional(Str),
  top_logprobs: Type.Optional(Int),
  max_tool_calls: Type.Optional(Int),
})
export type ResponseRequest = Static<typeof ResponseRequest>

/** `/messages/0/role` -> `messages[0].role` */
function paramName(path: string): string {
  return path
    .split('/')
    .filter(Boolean)
    .reduce((out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), '')
}

/**
 * A validator that returns the typed body or throws invalid_parameter naming the field, or unknown_parameter for a
 * top-level field that is neither in the schema nor in `ignored`.
 */
export function validator<T extends TSchema>(schema: T, ignored: readonly string[]): (body: unknown) => Static<T> {
  const compiled = Compile(schema)
  const known = new Set([...Object.keys((schema as unknown as { properties: object }).properties), ...ignored])
  return (body) => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidParam('body', 'the body must be a JSON object')
    for (const key of Object.keys(body)) {
      if (!known.has(key)) throw new HearthError('unknown_parameter', `Unrecognized request argument supplied: ${key}`, key)
    }
    if (compiled.Check(body)) return body as Static<T>
    const errors = [...compiled.Errors(body)]
    // report the deepest error: the field at fault rather than the union around it
    const first = errors.reduce((a, b) => (b.instancePath.length > a.instancePath.length ? b : a), errors[0]!)
    const required = first.keyword === 'required' ? (first.params as { requiredProperties?: string[] }).requiredProperties?.[0] : undefined
    const path = paramName(first.instancePath + (required ? `/${required}` : ''))
    const message = required ? `missing required parameter '${path}'` : `invalid value for '${path || 'body'}': ${first.message}`
    throw invalidParam(path || 'body', message)
  }
}

// The invariants every answer must keep: no 5xx (a 503 or 429 with Retry-After only under load), every error
// an OpenAI-shaped JSON body whose code, status and type agree with lib/errors.ts, a status that fits what the
// request did, and for a 200 a body of the right shape, streams ending as OpenAI's do and carrying no error.
import { errorCodes, isErrorCode } from '../../lib/errors.js'
import { MAX_HEAD_BYTES } from '../../server/http-server.js'
import { sseEvents } from '../server-helpers.js'
import { bodyBytes, type FuzzCase } from './fuzz-case.js'
import { isObject, type FuzzValue } from './fuzz-value.js'
import type { Outcome } from './http-client.js'
import { crashLine } from './signature.js'
import type { Sent } from './target.js'

export type FailureKind = 'crash' | '5xx' | 'error-shape' | 'unfit-status' | 'timeout' | 'no-response' | 'stream' | 'bad-200' | 'leak' | 'unclean-exit'

export interface Failure {
  kind: FailureKind
  detail: string
  status: number | null
  /** the error code the server answered with, if any */
  code: string | null
}

export interface CheckEnv {
  bodyLimit: number
  /** requests run concurrently: 429/503 with Retry-After may fit */
  underLoad: boolean
}

type Json = unknown

function parse(buf: Buffer): { ok: true; value: Json } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(buf.toString('utf8')) as Json }
  } catch {
    return { ok: false }
  }
}

const excerpt = (b: Buffer | string) => {
  const s = typeof b === 'string' ? b : b.toString('utf8')
  return s.length > 300 ? `${s.slice(0, 300)}... (${s.length} chars)` : s
}

/** The OpenAI error shape, exactly: problems as text, or null. */
export function errorShapeProblem(status: number, o: Outcome): { problem: string | null; code: string | null } {
  const parsed = parse(o.body)
  if (!parsed.ok) return { problem: `a ${status} whose body is not JSON: ${excerpt(o.body)}`, code: null }
  const e = isObject(parsed.value as FuzzValue) ? (parsed.value as { error?: unknown }).error : undefined
  if (!e || typeof e !== 'object') return { problem: `a ${status} without an error object: ${excerpt(o.body)}`, code: null }
  const { message, type, param, code } = e as Record<string, unknown>
  const codeText = typeof code === 'string' ? code : null
  if (typeof message !== 'string' || message === '') return { problem: 'error.message is not a non-empty string', code: codeText }
  if (typeof type !== 'string') return { problem: 'error.type is not a string', code: codeText }
  if (!(typeof param === 'string' || param === null)) return { problem: 'error.param is neither a string nor null', code: codeText }
  if (!isErrorCode(code)) return { problem: `error.code ${JSON.stringify(code)} is not in lib/errors.ts`, code: codeText }
  const info = errorCodes[code]
  if (info.status !== status) return { problem: `code ${code} belongs with ${info.status}, answered with ${status}`, code }
  if (info.type !== type) return { problem: `code ${code} has type ${info.type}, answered with ${type}`, code }
  if (!/application\/json/.test(o.headers['content-type'] ?? '')) return { problem: `content-type ${o.headers['content-type']}`, code }
  return { problem: null, code }
}

/** The request line and header lines, about as sent. */
function headBytes(c: FuzzCase): number {
  return c.path.length + Object.entries(c.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)
}

function hasField(c: FuzzCase, name: string): boolean {
  return isObject(c.body as FuzzValue) && Object.hasOwn(c.body as object, name)
}

/** Statuses the case may be answered with, besides load shedding and 413 (decided by the checker itself). */
export function fittingStatuses(c: FuzzCase): number[] {
  // a request head past the server's limit is refused before anything else is looked at
  if (headBytes(c) > MAX_HEAD_BYTES) return [431]
  if (c.expect) return c.expect
  if (c.kind === 'control') return [200]
  return [200, 400]
}

/** Whether a 404 is a fair answer to this case (a changed model name, an unknown previous response...). */
function fair404(c: FuzzCase, code: string | null): boolean {
  if (code === 'model_not_found') return c.endpoint === 'model' || c.touched.includes('model') || c.kind === 'raw'
  if (code === 'previous_response_not_found') return hasField(c, 'previous_response_id')
  if (code === 'response_not_found') return c.endpoint === 'responses-get' || c.endpoint === 'responses-delete'
  return code === 'not_found' && (c.kind === 'path' || c.kind === 'method')
}

/** Checks one answer; returns every invariant it breaks. */
export function checkOutcome(c: FuzzCase, o: Outcome, env: CheckEnv): Failure[] {
  const fail = (kind: FailureKind, detail: string, code: string | null = null): Failure[] => [{ kind, detail, status: o.status, code }]
  const size = bodyBytes(c)?.length ?? 0
  const tooLarge = size > env.bodyLimit
  if (o.timedOut) return fail('timeout', `no complete answer within the timeout (${o.status === null ? 'no response head' : `status ${o.status}, ${o.body.length} bytes so far`})`)
  if (o.status === null) {
    // our own walking away, or the server closing on an upload over its limit, leave no status to judge
    if (c.abort || tooLarge) return []
    return fail('no-response', `the connection ended without a response: ${o.error ?? 'closed'}`)
  }
  const status = o.status
  // a HEAD answer has no body to judge
  const shape = status >= 400 && o.complete && c.method !== 'HEAD' ? errorShapeProblem(status, o) : { problem: null, code: null }
  const code = shape.code
  if (status >= 500) {
    const shed = status === 503 && env.underLoad && o.headers['retry-after'] !== undefined && code !== 'internal_error'
    if (!shed) return fail('5xx', `${status} ${code ?? ''}: ${excerpt(o.body)}`, code)
  }
  if (shape.problem) return fail('error-shape', shape.problem, code)
  if (tooLarge) return status === 413 ? [] : fail('unfit-status', `a ${size}-byte body over the ${env.bodyLimit}-byte limit got ${status}, not 413`, code)
  if (status === 413) return fail('unfit-status', `413 for a ${size}-byte body under the ${env.bodyLimit}-byte limit`, code)
  if (status === 429) {
    if (!env.underLoad) return fail('unfit-status', `429 ${code} with nothing else running: this request can never be served; a 400 that says why fits`, code)
    if (o.headers['retry-after'] === undefined) return fail('unfit-status', '429 without Retry-After', code)
    return []
  }
  if (status >= 500) return []
  if (status === 404 && fair404(c, code)) return []
  // a valid request continuing a stored conversation may have outgrown the context, and the instructions for
  // tools take most of the built-in model's 256 cells
  if (status === 400 && code === 'context_length_exceeded' && (hasField(c, 'previous_response_id') || hasField(c, 'tools'))) return []
  if (!fittingStatuses(c).includes(status)) {
    const why = status === 200 ? 'accepted' : `${status} ${code ?? ''}`
    return fail('unfit-status', `${why}, expected ${fittingStatuses(c).join(' or ')}${status >= 400 ? `: ${excerpt(o.body)}` : ''}`, code)
  }
  if (status === 200 && o.complete && c.method !== 'HEAD') {
    const problem = okBodyProblem(c, o)
    if (problem) return fail(problem.startsWith('stream:') ? 'stream' : 'bad-200', problem)
  }
  return []
}

function streamProblem(c: FuzzCase, text: string): string | null {
  const events = sseEvents(text)
  if (events.length === 0) return 'stream: no events'
  if (c.endpoint === 'responses') {
    let seq = 0
    for (const ev of events) {
      const p = parse(Buffer.from(ev.data))
      if (!p.ok) return `stream: an event that is not JSON: ${excerpt(ev.data)}`
      const d = p.value as { type?: string; sequence_number?: number }
      if (d.type !== ev.event) return `stream: event ${ev.event} carries type ${d.type}`
      if (d.sequence_number !== seq++) return `stream: sequence_number ${d.sequence_number}, expected ${seq - 1}`
      if (d.type === 'error' || d.type === 'response.failed') return `stream: ${d.type}: ${excerpt(ev.data)}`
    }
    if (events[0]!.event !== 'response.created') return `stream: first event ${events[0]!.event}`
    const last = events.at(-1)!.event
    if (last !== 'response.completed' && last !== 'response.incomplete') return `stream: last event ${last}`
    return null
  }
  const object = c.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion'
  for (const [i, ev] of events.entries()) {
    if (ev.data === '[DONE]') return i === events.length - 1 ? null : 'stream: events after [DONE]'
    const p = parse(Buffer.from(ev.data))
    if (!p.ok) return `stream: a chunk that is not JSON: ${excerpt(ev.data)}`
    const d = p.value as { error?: unknown; object?: string }
    if (d.error) return `stream: an error chunk: ${excerpt(ev.data)}`
    if (d.object !== object) return `stream: a chunk with object ${d.object}`
  }
  return 'stream: no [DONE]'
}

function okBodyProblem(c: FuzzCase, o: Outcome): string | null {
  const ct = o.headers['content-type'] ?? ''
  if (c.method === 'OPTIONS') return null
  if (ct.startsWith('text/event-stream')) {
    if (c.endpoint !== 'chat' && c.endpoint !== 'completions' && c.endpoint !== 'responses') return `an event stream from ${c.endpoint}`
    return streamProblem(c, o.body.toString('utf8'))
  }
  if (c.endpoint === 'metrics') return /hearth_sequences_active \d+/.test(o.body.toString('utf8')) ? null : 'metrics without hearth_sequences_active'
  const p = parse(o.body)
  if (!p.ok) return `a 200 whose body is not JSON: ${excerpt(o.body)}`
  const v = p.value as Record<string, unknown>
  const expectObject: Partial<Record<FuzzCase['endpoint'], string>> = {
    chat: 'chat.completion', completions: 'text_completion', embeddings: 'list', responses: 'response', models: 'list', model: 'model',
  }
  // a stored response answers GET with itself and DELETE with a deletion, whichever endpoint's case asked
  const stored = c.endpoint === 'responses-get' || c.endpoint === 'responses-delete'
  const want = stored ? (c.method === 'DELETE' ? 'response.deleted' : 'response') : expectObject[c.endpoint]
  if (want && v.object !== want) return `object ${JSON.stringify(v.object)}, expected ${want}`
  if (c.endpoint === 'health' && v.status !== 'ok') return `health ${excerpt(o.body)}`
  if ((c.endpoint === 'chat' || c.endpoint === 'completions') && (!Array.isArray(v.choices) || v.choices.length === 0)) return 'no choices'
  if (c.endpoint === 'embeddings') {
    const data = v.data as { embedding?: unknown }[] | undefined
    if (!Array.isArray(data) || data.length === 0) return 'no embeddings'
    for (const d of data) {
      const e = d.embedding
      if (!(typeof e === 'string' || (Array.isArray(e) && e.every((x) => typeof x === 'number' && Number.isFinite(x))))) return 'an embedding that is neither base64 nor finite numbers'
    }
  }
  return null
}

/** The invariants for one sent case, a crash first. */
export function judge(c: FuzzCase, sent: Sent, env: CheckEnv): Failure[] {
  if (sent.crash) {
    const how = sent.crash.exit.signal ?? `exit code ${sent.crash.exit.code}`
    return [{ kind: 'crash', detail: `the server died (${how}): ${crashLine(sent.crash.log)}`, status: null, code: how }]
  }
  return checkOutcome(c, sent.outcome, env)
}

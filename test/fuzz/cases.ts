// The run's cases per endpoint: a seeded plan (controls, field mutations, broken JSON, every targeted case at
// least once) whose bodies are drawn only when sent, so later cases can use response ids stored earlier.
import { GENERATING, isPost, KNOWN_FIELDS, validBody, type EndpointName, type FuzzContext, type PostEndpoint } from './endpoints.js'
import type { AbortPlan, FuzzCase } from './fuzz-case.js'
import { getCase } from './get-cases.js'
import { corruptText, mutateFields } from './mutate.js'
import type { Rng } from './rng.js'
import { TARGETED, type Targeted } from './targeted.js'

type Slot = 'control' | 'mutation' | 'raw' | Targeted

/** The kinds of case, in order, for `count` cases of endpoint `e`. */
export function plan(rng: Rng, e: EndpointName, count: number): Slot[] {
  if (!isPost(e)) return rng.shuffle(Array.from({ length: count }, (_, i): Slot => (i % 5 === 0 ? 'control' : 'mutation')))
  const targeted = TARGETED.filter((t) => t.endpoints.includes(e))
  const nTargeted = Math.min(count, Math.max(targeted.length, Math.round(count * 0.2)))
  const slots: Slot[] = Array.from({ length: nTargeted }, (_, i) => (i < targeted.length ? targeted[i]! : rng.pick(targeted)))
  const rest = count - nTargeted
  const nControl = rest > 0 ? Math.max(1, Math.round(rest * 0.05)) : 0
  const nRaw = Math.round(rest * 0.15)
  for (let i = 0; i < rest; i++) slots.push(i < nControl ? 'control' : i < nControl + nRaw ? 'raw' : 'mutation')
  return rng.shuffle(slots)
}

function randomAbort(rng: Rng): AbortPlan {
  return rng.pick<AbortPlan>([{ at: 'mid-body' }, { at: 'after-send' }, { at: 'after-bytes', bytes: rng.int(0, 3000) }])
}

/** Draws the case for one slot. */
export function makeCase(rng: Rng, ctx: FuzzContext, e: EndpointName, slot: Slot, index: number): FuzzCase {
  const id = `${e}#${index}`
  if (!isPost(e)) return { id, ...getCase(rng, ctx, e, slot === 'control') }
  const post = { id, endpoint: e, method: 'POST', path: routePath(e), contentType: 'application/json' as string | null, headers: {} }
  if (typeof slot === 'object') {
    const t = slot.make(rng, ctx, e)
    return { ...post, body: t.body, kind: 'targeted', targeted: slot.name, label: `${slot.name}: ${t.label}`, touched: Object.keys(t.body), ...(t.expect ? { expect: t.expect } : {}), ...(t.abort ? { abort: t.abort } : {}) }
  }
  const valid = validBody(e, rng, ctx)
  if (slot === 'control') return { ...post, body: valid, kind: 'control', label: 'a valid request', touched: [] }
  if (slot === 'raw') {
    const r = corruptText(rng, valid)
    return { ...post, body: r.bytes, contentType: r.contentType === undefined ? 'application/json' : r.contentType, kind: 'raw', label: r.what, touched: [] }
  }
  const m = mutateFields(rng, valid, KNOWN_FIELDS[e as PostEndpoint])
  const abort = GENERATING.includes(e) && rng.chance(0.08) ? randomAbort(rng) : undefined
  return { ...post, body: m.body, kind: 'mutation', label: m.changes.join('; '), touched: m.touched, ...(abort ? { abort } : {}) }
}

function routePath(e: PostEndpoint): string {
  return { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings', responses: '/v1/responses' }[e]
}

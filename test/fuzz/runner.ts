// Runs the fuzz: starts the real server, sends every endpoint its cases (seeded), checks each answer, watches
// the process, checks for leaked sequences at checkpoints and at the end, stops the server (which must exit
// cleanly), then shrinks one case of each failure to a minimal reproducer.
import { join } from 'node:path'
import { readGGUFMetadata } from '../../bench/gguf-reader.js'
import { packageRoot } from '../../lib/native.js'
import { makeCase, plan } from './cases.js'
import { judge, type CheckEnv, type Failure } from './check.js'
import { DEFAULT_LIMITS, ENDPOINTS, type EndpointName, type FuzzContext } from './endpoints.js'
import type { FuzzCase } from './fuzz-case.js'
import { isObject, type FuzzValue } from './fuzz-value.js'
import { knownFailure, type KnownFailure } from './known-failures.js'
import { minimiseGroup, findLeak } from './minimise.js'
import { Rng } from './rng.js'
import { crashLine, signature } from './signature.js'
import { FuzzTarget, type Sent } from './target.js'

export interface FuzzOptions {
  seed: number
  /** cases per endpoint */
  count: number
  endpoints: readonly EndpointName[]
  /** cases in flight at once; above 1, load shedding (429/503 with Retry-After) fits */
  concurrency: number
  timeoutMs: number
  /** cases matching these are not sent */
  skip: readonly KnownFailure[]
  minimise: boolean
  modelPath: string
  /** tokens per sequence and slots: small, so limits are easy to reach */
  ctx: number
  parallel: number
  maxQueue: number
  bodyLimit: number
  /** how long sequences may take to drain before it counts as a leak */
  idleBoundMs: number
  /** a leak check every this many cases */
  checkpointEvery: number
  log: (line: string) => void
}

export const DEFAULT_OPTIONS: FuzzOptions = {
  seed: 1,
  count: 1000,
  endpoints: ENDPOINTS,
  concurrency: 1,
  timeoutMs: 60_000,
  skip: [],
  minimise: true,
  modelPath: join(packageRoot, 'models', 'austen-kjv-2.6m-f32.gguf'),
  ...DEFAULT_LIMITS,
  idleBoundMs: 30_000,
  checkpointEvery: 100,
  log: () => {},
}

export interface EndpointStats {
  sent: number
  skipped: number
  statuses: Record<string, number>
  failures: number
}

export interface FailureGroup {
  signature: string
  failure: Failure
  count: number
  caseIds: string[]
  first: FuzzCase
  /** the case finished just before, for crashes that may belong to it */
  previous: FuzzCase | null
  /** the smallest case found that fails the same way */
  minimal: FuzzCase
  /** for crashes: whether the case alone, on a fresh server, crashes it (null: not tried) */
  alone: boolean | null
  /** for leaks: the cases sent since the last clean checkpoint */
  window?: FuzzCase[]
}

export interface FuzzReport {
  options: Omit<FuzzOptions, 'log' | 'skip'> & { skip: string[] }
  stats: Partial<Record<EndpointName, EndpointStats>>
  groups: FailureGroup[]
  restarts: number
  durationMs: number
  serverArgs: string[]
}

/** A stable per-endpoint seed, so --endpoint X draws the same cases for X as a full run. */
function endpointSeed(seed: number, e: EndpointName): number {
  let h = seed >>> 0
  for (const ch of e) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
  return h
}

export function serverArgs(o: FuzzOptions): string[] {
  return [
    '--model', o.modelPath, '--threads', '1', '--ctx', String(o.ctx), '--parallel', String(o.parallel), '--max-queue', String(o.maxQueue),
    '--body-limit', String(o.bodyLimit), '--responses', '100000', '--quiet',
  ]
}

export async function runFuzz(partial: Partial<FuzzOptions> = {}): Promise<FuzzReport> {
  const o: FuzzOptions = { ...DEFAULT_OPTIONS, ...partial }
  const started = performance.now()
  const args = serverArgs(o)
  const target = new FuzzTarget(args, o.timeoutMs)
  await target.server()
  const meta = readGGUFMetadata(o.modelPath)
  const arch = String(meta.get('general.architecture'))
  const models = (await (await fetch(`${target.url}/v1/models`)).json()) as { data: { id: string }[] }
  const ctx: FuzzContext = {
    modelId: models.data[0]!.id,
    nVocab: (meta.get('tokenizer.ggml.tokens') as unknown[]).length,
    nEmbd: Number(meta.get(`${arch}.embedding_length`)),
    nCtx: o.ctx,
    bodyLimit: o.bodyLimit,
    responseIds: [],
  }
  const env: CheckEnv = { bodyLimit: o.bodyLimit, underLoad: o.concurrency > 1 }
  const groups = new Map<string, FailureGroup>()
  const stats: Partial<Record<EndpointName, EndpointStats>> = {}
  let previous: FuzzCase | null = null
  let window: FuzzCase[] = []
  let poolOf = target.restarts

  const record = (c: FuzzCase, f: Failure, prev: FuzzCase | null) => {
    const sig = signature(c, f)
    const g = groups.get(sig)
    if (g) {
      g.count++
      if (g.caseIds.length < 8) g.caseIds.push(c.id)
    } else {
      groups.set(sig, { signature: sig, failure: f, count: 1, caseIds: [c.id], first: c, previous: prev, minimal: c, alone: null })
    }
    o.log(`FAIL ${c.id} ${f.kind} ${f.status ?? ''} ${f.code ?? ''}: ${f.detail.slice(0, 200)} [${c.label.slice(0, 120)}]`)
  }

  const checkpoint = async (where: string) => {
    const idle = await target.idle(o.idleBoundMs)
    if (!idle.ok && window.length) {
      const f: Failure = { kind: 'leak', detail: `hearth_sequences_active ${idle.active}, hearth_sequences_queued ${idle.queued} ${o.idleBoundMs / 1000} s after ${where}`, status: null, code: null }
      const last = window.at(-1)!
      record(last, f, null)
      groups.get(signature(last, f))!.window = window
      // a fresh server, so one leak is not counted again at every later checkpoint
      await target.restart()
    }
    window = []
  }

  for (const e of o.endpoints) {
    const rng = new Rng(endpointSeed(o.seed, e))
    const st: EndpointStats = (stats[e] = { sent: 0, skipped: 0, statuses: {}, failures: 0 })
    const slots = plan(rng, e, o.count)
    let next = 0
    const worker = async () => {
      while (next < slots.length) {
        const index = next++
        // stored responses live in the server process: a restarted one has none
        if (target.restarts !== poolOf) {
          ctx.responseIds = []
          poolOf = target.restarts
        }
        if ((e === 'responses-get' || e === 'responses-delete') && ctx.responseIds.length === 0) await seedResponses(target, ctx)
        const c = makeCase(rng, ctx, e, slots[index]!, index)
        if (knownFailure(c, o.skip)) {
          st.skipped++
          continue
        }
        window.push(c)
        const before = previous
        const sent = await target.send(c)
        // the server died while idle, after an answer that was already complete: the case before is the suspect
        for (const x of target.takeOrphanExits()) {
          const suspect = before ?? c
          const f = judge(suspect, { outcome: sent.outcome, crash: x }, env)[0]!
          record(suspect, { ...f, detail: `${f.detail} (while idle, after this case had been answered)` }, null)
          stats[suspect.endpoint]!.failures++
        }
        st.sent++
        const key = sent.outcome.status === null ? (c.abort ? 'walked-away' : 'none') : String(sent.outcome.status)
        st.statuses[key] = (st.statuses[key] ?? 0) + 1
        const failures = judge(c, sent, env)
        st.failures += failures.length
        for (const f of failures) record(c, f, previous)
        learn(c, sent, ctx)
        previous = c
        // a crashed server was replaced: what it leaked went with it
        if (sent.crash) window = []
        // a server still busy with a request that timed out would make the next cases time out too
        if (failures.some((f) => f.kind === 'timeout')) {
          await target.restart()
          window = []
        }
        // with several cases in flight the server is never idle between them: check at the end only
        if (o.concurrency === 1 && window.length >= o.checkpointEvery) await checkpoint(`${c.id}`)
      }
    }
    await Promise.all(Array.from({ length: o.concurrency }, worker))
    await checkpoint(`the last ${e} case`)
    o.log(`${e}: ${st.sent} sent, ${st.skipped} skipped, ${st.failures} failures, statuses ${JSON.stringify(st.statuses)}`)
  }

  const exit = await target.stop()
  if (exit && (exit.code !== 0 || exit.signal)) {
    const c = previous ?? ({ id: 'shutdown', endpoint: 'health', method: 'GET', path: '/', contentType: null, headers: {}, body: null, kind: 'control', label: 'SIGTERM', touched: [] } as FuzzCase)
    record(c, { kind: 'unclean-exit', detail: `after SIGTERM the server exited with ${exit.signal ?? exit.code}: ${crashLine(target.logTail())}`, status: null, code: null }, null)
  }

  if (o.minimise) {
    for (const g of groups.values()) {
      o.log(`minimising ${g.signature}`)
      if (g.failure.kind === 'leak' && g.window) await findLeak(target, g, o)
      else if (g.failure.kind !== 'unclean-exit') await minimiseGroup(target, g, env, o)
    }
    await target.stop()
  }

  return {
    options: { ...o, skip: o.skip.map((k) => k.name) } as FuzzReport['options'],
    stats,
    groups: [...groups.values()],
    restarts: target.restarts,
    durationMs: performance.now() - started,
    serverArgs: args,
  }
}

/** Keeps the pool of stored response ids current (created ones in, deleted ones out). */
function learn(c: FuzzCase, sent: Sent, ctx: FuzzContext): void {
  const o = sent.outcome
  if (o.status !== 200 || !o.complete) return
  if (c.endpoint === 'responses' && isObject(c.body as FuzzValue) && (c.body as Record<string, FuzzValue>).store !== false) {
    const m = /"id":"(resp_[0-9a-f]+)"/.exec(o.body.toString('utf8'))
    if (m && !ctx.responseIds.includes(m[1]!)) ctx.responseIds.push(m[1]!)
  }
  if (c.method === 'DELETE') {
    const id = /\/v1\/responses\/([^/?#]+)$/.exec(c.path)?.[1]
    ctx.responseIds = ctx.responseIds.filter((x) => x !== id)
  }
}

async function seedResponses(target: FuzzTarget, ctx: FuzzContext): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`${target.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'hi', max_output_tokens: 2 }) })
    const j = (await r.json()) as { id?: string }
    if (j.id) ctx.responseIds.push(j.id)
  }
}

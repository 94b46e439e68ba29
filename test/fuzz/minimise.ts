// Shrinks one failing case per group to a minimal reproducer: replays it alone on a fresh server (for a
// crash, also after the case before it), then drops fields and halves long strings, arrays and maps for as
// long as it still fails the same way. A leak is found by replaying the cases since the last clean
// checkpoint one at a time, each followed by the idle check.
import { judge, type CheckEnv } from './check.js'
import type { FuzzCase } from './fuzz-case.js'
import { clone, deleteAt, getAt, isObject, paths, setAt, type FuzzObject, type FuzzValue } from './fuzz-value.js'
import type { FailureGroup, FuzzOptions } from './runner.js'
import { signature } from './signature.js'
import type { FuzzTarget } from './target.js'

const MAX_TRIES = 80
const MAX_MS = 120_000
/** a timeout costs the whole request timeout per try */
const MAX_MS_TIMEOUT = 300_000

async function failsSame(target: FuzzTarget, c: FuzzCase, g: FailureGroup, env: CheckEnv): Promise<boolean> {
  // a server still working on a timed-out request would time out the next one whatever it is
  if (g.failure.kind === 'timeout') await target.restart()
  const sent = await target.send(c)
  return judge(c, sent, env).some((f) => signature(c, f) === g.signature)
}

/** Smaller variants of `body`, shallow first: each field or element dropped, long values halved. */
function* shrinkings(body: FuzzObject): Generator<FuzzObject> {
  for (const p of paths(body, 8)) {
    const d = clone(body) as FuzzObject
    if (deleteAt(d, p)) yield d
    const half = halve(getAt(body, p))
    if (half === undefined) continue
    const b = clone(body) as FuzzObject
    setAt(b, p, half)
    yield b
  }
}

function halve(v: FuzzValue | undefined): FuzzValue | undefined {
  if (typeof v === 'string' && v.length >= 8) return v.slice(0, Math.ceil(v.length / 2))
  if (Array.isArray(v) && v.length >= 4) return v.slice(0, Math.ceil(v.length / 2)).map(clone)
  if (isObject(v) && Object.keys(v).length >= 4) {
    const keys = Object.keys(v)
    const o = clone(v) as FuzzObject
    for (const k of keys.slice(Math.ceil(keys.length / 2))) delete o[k]
    return o
  }
  return undefined
}

export async function minimiseGroup(target: FuzzTarget, g: FailureGroup, env: CheckEnv, o: FuzzOptions): Promise<void> {
  const first = g.first
  if (g.failure.kind === 'crash') {
    await target.restart()
    g.alone = await failsSame(target, first, g, env)
    if (!g.alone && g.previous) {
      await target.restart()
      await target.send(g.previous)
      if (!(await failsSame(target, first, g, env))) return
      o.log(`  ${first.id} crashes the server only after ${g.previous.id}`)
    }
    if (!g.alone) return
  } else if (!(await failsSame(target, first, g, env))) {
    o.log(`  ${first.id} did not fail the same way again: not minimised`)
    return
  }
  if (!isObject(first.body as FuzzValue) || Buffer.isBuffer(first.body)) return
  const started = performance.now()
  let best = first
  let tries = 0
  for (let progress = true; progress; ) {
    progress = false
    for (const body of shrinkings(best.body as FuzzObject)) {
      if (tries++ >= MAX_TRIES || performance.now() - started > (g.failure.kind === 'timeout' ? MAX_MS_TIMEOUT : MAX_MS)) return
      const candidate: FuzzCase = { ...best, id: `${first.id}~${tries}`, body }
      if (await failsSame(target, candidate, g, env)) {
        best = candidate
        g.minimal = candidate
        progress = true
        break
      }
    }
  }
}

export async function findLeak(target: FuzzTarget, g: FailureGroup, o: FuzzOptions): Promise<void> {
  await target.restart()
  for (const c of g.window ?? []) {
    await target.send(c)
    const idle = await target.idle(Math.min(o.idleBoundMs, 10_000))
    if (!idle.ok) {
      g.minimal = c
      // and alone, on a fresh server
      await target.restart()
      await target.send(c)
      g.alone = !(await target.idle(Math.min(o.idleBoundMs, 10_000))).ok
      await target.restart()
      return
    }
  }
  g.alone = false
}

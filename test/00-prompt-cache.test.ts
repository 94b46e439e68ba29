// The host-RAM prompt cache and the per-sequence KV layout without a model: PromptCache's LRU under its cap and the
// memory budget, KvCells per layout, and the scheduler saving a slot's cells before another prompt takes the slot
// and restoring them when their prompt comes back (over the fake context, steps settled by the test).
import { once } from 'node:events'
import t from 'tap'
import { KvCells, type KvBackend } from '../lib/kv-cells.js'
import { chooseKvLayout } from '../lib/kv-layout.js'
import { MemoryBudget } from '../lib/memory-budget.js'
import { samplingParams } from '../lib/params.js'
import { planReuse } from '../lib/prefix-plan.js'
import { PromptCache, type SavedState } from '../lib/prompt-cache.js'
import { Scheduler, type SchedulerOptions } from '../lib/scheduler.js'
import type { Sequence } from '../lib/sequence.js'
import { FakeContext, FakeState, letterPieces } from './fake-context.js'

class State implements SavedState {
  disposed = false
  constructor(readonly byteLength: number) {}
  dispose(): void {
    this.disposed = true
  }
}

const run = (from: number, n: number) => Int32Array.from({ length: n }, (_, i) => from + i)

t.test('PromptCache: longest prefix, LRU under its cap, redundant prefixes dropped, minTokens', async (t) => {
  const cache = new PromptCache<State>({ maxBytes: 300, minTokens: 4 })
  const a = new State(100)
  const b = new State(100)
  t.ok(cache.add(run(1, 10), a))
  t.ok(cache.add(run(100, 10), b))
  t.equal(cache.lookup(run(1, 20))?.length, 10, 'an entry whose tokens the prompt extends')
  t.equal(cache.lookup(run(1, 3)), null, 'fewer shared tokens than minTokens is no match')
  t.ok(cache.covers(run(1, 6)), 'a prefix of an entry adds nothing')
  t.ok(cache.covers(run(500, 3)), 'too short to keep')
  const short = new State(10)
  t.notOk(cache.add(run(1, 6), short), 'a state that adds nothing is not kept ...')
  t.ok(short.disposed, '... and is freed')
  // a longer state of the same conversation replaces the shorter one
  const a2 = new State(100)
  t.ok(cache.add(run(1, 15), a2))
  t.ok(a.disposed, 'the entry it extends is dropped')
  t.equal(cache.size, 2)
  // b is used, so a2 is the least recently used when room is needed
  cache.hit(cache.lookup(run(100, 12))!, 10)
  const c = new State(150)
  t.ok(cache.add(run(300, 10), c))
  t.ok(a2.disposed, 'the least recently used entry made room under the cap')
  t.notOk(b.disposed, 'the recently restored entry stays')
  t.match(cache.stats(), { entries: 2, bytes: 250, hits: 1, restoredTokens: 10, evictions: 1 })
  t.notOk(cache.add(run(900, 10), new State(301)), 'larger than the whole cap: refused')
  cache.clear()
  t.ok(b.disposed && c.disposed)
  t.equal(cache.bytes, 0)
})

t.test('PromptCache draws on the memory budget and gives back to it', async (t) => {
  const budget = new MemoryBudget(1000)
  const cache = new PromptCache<State>({ maxBytes: 10_000, minTokens: 1, budget })
  const model = { name: 'model' }
  t.ok(budget.take(model, 700))
  t.ok(cache.add(run(1, 5), new State(200)))
  t.equal(budget.heldBy(cache), 200)
  const first = cache.lookup(run(1, 5))!.state
  t.ok(cache.add(run(10, 5), new State(150)), 'the budget has 100 left: the older entry makes room')
  t.ok(first.disposed)
  t.equal(budget.heldBy(cache), 150)
  // a model load asks the cache for room before anything else
  t.ok(budget.take({ name: 'other model' }, 250, [cache]))
  t.equal(cache.size, 0, 'the cache gave back what the load needed')
  t.equal(budget.heldBy(cache), 0)
  t.equal(cache.stats().evictions, 2)
})

t.test('KvCells per sequence: a stream per slot, shares are copies, nothing evicted for room', async (t) => {
  const log: string[] = []
  const backend: KvBackend = { remove: (s, from) => log.push(`rm ${s} ${from}`), copy: (src, dst, n) => log.push(`cp ${src} ${dst} ${n}`) }
  const kv = new KvCells(40, 4, backend, 'per-seq')
  t.equal(kv.slotCells, 10)
  t.ok(kv.canReserve(10))
  t.notOk(kv.canReserve(11), 'no request may hold more than its stream')
  kv.acquire(0, 8)
  kv.book(0, [1, 2, 3, 4, 5, 6])
  kv.release(0)
  kv.acquire(1, 8)
  kv.share(0, 1, 4)
  t.same(log.at(-1), 'cp 0 1 4')
  t.equal(kv.used, 10, 'the shared prefix takes cells in both streams')
  t.same(kv.victims(1000), [], 'idle cells are never evicted for other streams')
  t.ok(kv.makeRoom(1000))
  t.same(kv.tokens(0), [1, 2, 3, 4, 5, 6], "the idle slot's cache stays")
  const unified = new KvCells(10, 2, backend)
  unified.acquire(0, 6)
  unified.book(0, [1, 2, 3, 4, 5, 6])
  unified.release(0)
  t.same(unified.victims(5), [0], 'unified: the idle cache makes room when cells run short')
  t.same(unified.victims(4), [], 'none when there is room')
})

t.test('the KV layout rule', async (t) => {
  t.equal(chooseKvLayout({ choice: 'auto', parallel: 1, contextSize: 4096 }), 'unified', 'one sequence: the same cache')
  t.equal(chooseKvLayout({ choice: 'auto', parallel: 8, contextSize: 2048 }), 'per-seq', 'every sequence has its context in 16384 cells')
  t.equal(chooseKvLayout({ choice: 'auto', parallel: 8, contextSize: 4096 }), 'unified', 'per-seq would need a larger cache')
  t.equal(chooseKvLayout({ choice: 'auto', parallel: 8, contextSize: 4096, kvSize: 32768 }), 'per-seq', 'an explicit cache that holds it')
  t.equal(chooseKvLayout({ choice: 'unified', parallel: 8, contextSize: 256 }), 'unified')
  t.throws(() => chooseKvLayout({ choice: 'per-seq', parallel: 8, contextSize: 256, kvSize: 1024 }), { code: 'invalid_parameter', param: 'kvSize' })
  t.throws(() => chooseKvLayout({ choice: 'sideways' as 'auto', parallel: 8, contextSize: 256 }), { code: 'invalid_parameter', param: 'kvLayout' })
})

t.test('planReuse takes a saved prefix only when it adds at least minTokens over the slots', async (t) => {
  const kv = new KvCells(100, 2, { remove: () => undefined, copy: () => undefined })
  kv.acquire(0, 10)
  kv.book(0, [...run(1, 10)])
  kv.release(0)
  const cache = new PromptCache<State>({ maxBytes: 1e6, minTokens: 8 })
  cache.add(run(1, 30), new State(300))
  const long = planReuse(kv, [], run(1, 40), true, undefined, cache)
  t.same([long.length, long.fromSlot, long.ram?.length], [30, -1, 30], 'RAM gives 20 more than the slot')
  const near = planReuse(kv, [], run(1, 16), true, undefined, cache)
  t.same([near.length, near.fromSlot, near.ram], [10, 0, null], '5 more tokens: the slot, computing the rest')
})

const options: SchedulerOptions = { nParallel: 1, maxQueue: 4, nBatch: 64, nCtx: 64, nCtxSeq: 64, promptCache: true }

async function finish(ctx: FakeContext, seq: Sequence): Promise<void> {
  for (;;) {
    const call = await ctx.nextStepOr(seq.result)
    if (!call) return
    call.settle()
  }
}

t.test('a slot taken by another prompt is saved first; the first prompt comes back restored', async (t) => {
  for (const layout of ['unified', 'per-seq'] as const) {
    const ctx = new FakeContext()
    const ram = new PromptCache<FakeState>({ maxBytes: 1e6, minTokens: 4 })
    const scheduler = new Scheduler(ctx, letterPieces(), Int32Array.of(0), { ...options, kvLayout: layout, ramCache: ram })
    const submit = (prompt: Int32Array) => scheduler.submit(prompt, samplingParams({ temperature: 0, maxTokens: 3 }))
    const userA = run(1, 20)
    const a = submit(userA)
    await finish(ctx, a)
    t.equal(ctx.saves.length, 0, `${layout}: nothing saved while the slot is not needed`)
    const b = submit(run(100, 12))
    await finish(ctx, b)
    t.same(ctx.saves, [[0, 22]], `${layout}: user A's 20 prompt and 2 kept output cells saved before B took the slot`)
    // A's next turn extends its history: restored, then only its new tokens are decoded
    const turn2 = Int32Array.from([...userA, 21, 22, 50, 51, 52])
    const a2 = submit(turn2)
    const first = await ctx.nextStep()
    t.same(ctx.restores.at(-1), [0, 22, 22], `${layout}: restored, all 22 cells kept`)
    t.same(first.tokens, [50, 51, 52], `${layout}: only the new tokens are computed`)
    first.settle()
    await finish(ctx, a2)
    t.equal((await a2.result).cachedTokens, 22)
    t.match(scheduler.stats().ramCache, { hits: 1, saves: 2, restoredTokens: 22 }, `${layout}: B was saved in turn`)
    await scheduler.close()
    t.equal(ram.size, 0, 'close frees the cache')
  }
})

t.test('a failed restore computes the prompt instead', async (t) => {
  const ctx = new FakeContext()
  const ram = new PromptCache<FakeState>({ maxBytes: 1e6, minTokens: 4 })
  const scheduler = new Scheduler(ctx, letterPieces(), Int32Array.of(0), { ...options, kvLayout: 'per-seq', ramCache: ram })
  const submit = (prompt: Int32Array) => scheduler.submit(prompt, samplingParams({ temperature: 0, maxTokens: 2 }))
  await finish(ctx, submit(run(1, 20)))
  await finish(ctx, submit(run(100, 12)))
  ctx.failRestore = true
  const warned = once(process, 'warning')
  const again = submit(run(1, 24))
  const step = await ctx.nextStep()
  t.equal(step.tokens.length, 24, 'the whole prompt is computed')
  step.settle()
  await finish(ctx, again)
  t.match(await again.result, { finishReason: 'length', cachedTokens: 0 })
  const [warning] = (await warned) as [Error]
  t.match(warning.message, /restoring a prompt from the RAM cache failed/)
})

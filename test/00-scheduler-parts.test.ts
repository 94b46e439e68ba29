// The scheduler's parts without a model: KV-cell accounting, batch building, and the step loop over a fake context
// whose steps the test settles one by one (so every assertion is about the order of events, never about time).
import t from 'tap'
import { buildBatch, type BatchMember } from '../lib/batch.js'
import { KvCells, type KvBackend } from '../lib/kv-cells.js'
import { samplingParams, type SamplingInput } from '../lib/params.js'
import { adoptPrefix, cellsNeeded, MIN_SHARED_WAIT, pickSlot, planReuse, type PrefixSource } from '../lib/prefix-plan.js'
import { Scheduler, type SchedulerOptions } from '../lib/scheduler.js'
import type { Sequence } from '../lib/sequence.js'
import { FakeContext, letterPieces, type StepCall } from './fake-context.js'

function recordingBackend(): KvBackend & { log: string[] } {
  const log: string[] = []
  return { log, remove: (slot, from) => log.push(`rm ${slot} ${from}`), copy: (src, dst, n) => log.push(`cp ${src} ${dst} ${n}`) }
}

t.test('prefix plan: reuse from a slot, waiting for a running prefill, cells needed, the slot picked and its adoption', async (t) => {
  const backend = recordingBackend()
  const kv = new KvCells(100, 3, backend)
  const seq = (n: number, from = 1) => Int32Array.from({ length: n }, (_, i) => from + i)
  // slot 0 finished a request over 1..20 and is idle: its cells are a cache
  kv.acquire(0, 20)
  kv.book(0, [...seq(20)])
  kv.release(0)
  const prompt = seq(30)
  const none = planReuse(kv, [], prompt, true)
  t.same(none, { length: 20, fromSlot: 0, waitFor: null, ram: null }, "the idle slot's 20 cells")
  t.same(planReuse(kv, [], seq(20), true).length, 19, 'the last prompt token is always decoded again')
  t.same(planReuse(kv, [], prompt, false), { length: 0, fromSlot: -1, waitFor: null, ram: null }, 'no prompt cache, no reuse')
  t.equal(cellsNeeded(kv, none, prompt, 5), 10 + 5 + 20, 'cells adopted from an idle slot count as needed')
  // a running prefill of a longer shared prefix, not computed yet
  kv.acquire(1, 60)
  kv.book(1, [...seq(4)])
  const running: PrefixSource = { slot: 1, prompt: seq(60), booked: 4, prefilling: true, left: false }
  const wait = planReuse(kv, [running], seq(50), true)
  t.same([wait.length, wait.fromSlot, wait.waitFor], [49, 1, running], 'waits for the prefill that will give 29 more tokens')
  t.equal(cellsNeeded(kv, wait, seq(50), 5), 1 + 5, 'cells a busy slot will hold are not needed again')
  const short = seq(20 + MIN_SHARED_WAIT - 1)
  t.equal(planReuse(kv, [running], short, true).waitFor, null, `fewer than ${MIN_SHARED_WAIT} more tokens are computed, not waited for`)
  t.equal(planReuse(kv, [{ ...running, left: true }], seq(50), true).waitFor, null, 'a prefill that left is not waited for')
  // the slot: its own longest prefix, else the least recently used
  t.equal(pickSlot(kv, [2, 0], prompt, true), 0)
  t.equal(pickSlot(kv, [2, 0], prompt, false), 2)
  t.equal(pickSlot(kv, [2, 0], seq(5, 500), true), 2)
  // adoption: slot 2 takes slot 0's prefix by a copy; slot 0 keeps what it shares by truncating
  kv.acquire(2, 30)
  t.equal(adoptPrefix(kv, 2, prompt, true), 20)
  t.same(backend.log.at(-1), 'cp 0 2 20')
  t.equal(adoptPrefix(kv, 2, seq(10), true), 9, 'its own prefix is truncated to what the prompt shares')
  t.same(backend.log.at(-1), 'rm 2 9')
  t.equal(adoptPrefix(kv, 2, prompt, false), 0, 'no prompt cache: the slot starts empty')
})

t.test('KvCells: booking, sharing counted once, reservations, eviction of idle caches only', async (t) => {
  const backend = recordingBackend()
  const kv = new KvCells(10, 3, backend)
  kv.acquire(0, 6)
  t.equal(kv.reserved, 6)
  kv.book(0, [1, 2, 3, 4])
  t.equal(kv.used, 4)
  t.equal(kv.reserved, 2, 'booked cells come out of the reservation')
  t.equal(kv.heldByBusy(), 4)
  t.notOk(kv.canReserve(5), '4 held + 2 promised + 5 > 10')
  t.ok(kv.canReserve(4))
  kv.acquire(1, 1)
  kv.share(0, 1, 3)
  t.same(backend.log.at(-1), 'cp 0 1 3')
  t.equal(kv.used, 4, 'a shared prefix occupies its cells once')
  t.equal(kv.heldByBusy(), 4)
  t.same(kv.bestPrefix([1, 2, 3, 9]), { slot: 0, length: 3 })
  kv.release(0)
  t.equal(kv.reserved, 1, 'a released slot returns its unused promise')
  t.equal(kv.heldByBusy(), 3, 'cells shared with a busy slot stay held')
  t.ok(kv.makeRoom(7), 'the idle slot is evicted')
  t.equal(kv.used, 3, 'which frees only the cell it did not share with a busy slot')
  kv.book(1, [7])
  kv.release(1)
  t.same(kv.idleSlots(), [2, 0, 1], 'never used first, then least recently used')
  t.ok(kv.makeRoom(10), 'idle caches can all be evicted')
  t.equal(kv.used, 0)
  kv.acquire(2, 0)
  kv.book(2, [5, 5, 5])
  t.notOk(kv.makeRoom(8), 'a busy slot is never evicted')
  t.equal(kv.used, 3)
  kv.truncate(2, 1)
  t.equal(kv.used, 1)
  t.same(backend.log.at(-1), 'rm 2 1')
  t.throws(() => kv.acquire(2, 0), /already busy/)
})

function member(slot: number, prompt: number[], booked: number, pending = -1, waiting = false): BatchMember {
  return { slot, prompt: Int32Array.from(prompt), booked, pending, prefilling: pending < 0, waiting }
}

t.test('buildBatch: next tokens first, then prompt chunks within the budget', async (t) => {
  const a = member(0, [1, 2, 3], 3, 9)
  const b = member(1, [1, 2, 3, 4, 5, 6], 1)
  const c = member(2, [7, 7], 0)
  const d = member(3, [8, 8], 0, -1, true)
  const batch = buildBatch([b, a, c, d], 4, 100)!
  t.same([...batch.tokens], [9, 2, 3, 4], 'a decodes its token, b gets the remaining budget')
  t.same([...batch.positions], [3, 1, 2, 3])
  t.same([...batch.seqIds], [0, 1, 1, 1])
  t.same([...batch.sampleAt], [0], 'b is not sampled until its last prompt chunk')
  t.same(batch.entries.map((e) => e.sample), [0, -1])
  const next = buildBatch([member(1, [1, 2, 3, 4, 5, 6], 4), c], 8, 100)!
  t.same([...next.tokens], [5, 6, 7, 7])
  t.same([...next.sampleAt], [1, 3], 'last chunks are sampled at their last token')
  t.equal(buildBatch([d], 8, 100), null, 'a waiting member decodes nothing')
  t.same([...buildBatch([b, c], 8, 3)!.tokens], [2, 3, 4], 'never more tokens than free cells')
})

const options: SchedulerOptions = { nParallel: 2, maxQueue: 4, nBatch: 8, nCtx: 32, nCtxSeq: 16, promptCache: true }

function setup(opts: Partial<SchedulerOptions> = {}) {
  const ctx = new FakeContext()
  const scheduler = new Scheduler(ctx, letterPieces(), Int32Array.of(0), { ...options, ...opts })
  const submit = (prompt: number[], input: SamplingInput = {}) => scheduler.submit(Int32Array.from(prompt), samplingParams({ temperature: 0, ...input }))
  return { ctx, scheduler, submit }
}

function collect(seq: Sequence): { text: () => string } {
  let text = ''
  seq.listen({ chunk: (c) => (text += c.text), end: () => undefined })
  return { text: () => text }
}

/** Settles steps with the default next token until `seq` has ended. */
async function runUntilDone(ctx: FakeContext, seq: Sequence, next?: Parameters<StepCall['settle']>[0]): Promise<void> {
  for (;;) {
    const call = await ctx.nextStepOr(seq.result)
    if (!call) return
    call.settle(next)
  }
}

t.test('two requests admitted in one tick cannot overcommit the cache: the second waits, the first runs to its budget', async (t) => {
  const { ctx, scheduler, submit } = setup({ nCtx: 24 })
  const a = submit([1, 2, 3, 4], { maxTokens: 10 }) // 14 cells
  const b = submit([5, 6, 7, 8], { maxTokens: 10 }) // 14 more would not fit in 24
  t.match(scheduler.stats(), { active: 1, queued: 1, reservedCells: 14 })
  await runUntilDone(ctx, a)
  t.equal((await a.result).finishReason, 'length')
  t.equal((await a.result).completionTokens, 10, 'the first request got every token it asked for')
  await runUntilDone(ctx, b)
  t.equal((await b.result).completionTokens, 10)
  await scheduler.idle()
  t.equal(scheduler.stats().reservedCells, 0)
})

t.test('max_tokens beyond the room left is generation until the context is full, not an error', async (t) => {
  const { ctx, submit } = setup()
  const seq = submit([1, 2, 3, 4, 5, 6], { maxTokens: 4096 })
  await runUntilDone(ctx, seq)
  const r = await seq.result
  t.equal(r.finishReason, 'length')
  t.equal(r.completionTokens, 16 - 6, 'prompt plus output fill the sequence context')
  t.throws(() => submit(Array(16).fill(1)), { code: 'context_length_exceeded', param: 'prompt' }, 'a prompt with no room left is a 400')
})

t.test('a step that throws synchronously or rejects fails its sequences; the loop goes on', async (t) => {
  const { ctx, scheduler, submit } = setup()
  ctx.throwNext = new Error('native step blew up')
  const a = submit([1, 2, 3])
  t.match(await a.result, { finishReason: 'error', error: { code: 'internal_error' } })
  const b = submit([1, 2, 3], { maxTokens: 3 })
  const call = await ctx.nextStep()
  call.fail(Object.assign(new Error('llama_decode returned -1'), { code: 'decode_failed' }))
  t.match(await b.result, { finishReason: 'error', error: { code: 'decode_failed' } })
  t.ok(ctx.removed.some(([seq, from]) => seq === call.seqIds[0] && from === 0), "the failed step's cells are dropped")
  const c = submit([4, 5, 6], { maxTokens: 3 })
  await runUntilDone(ctx, c)
  t.match(await c.result, { finishReason: 'length', completionTokens: 3 })
  await scheduler.idle()
  t.match(scheduler.stats(), { active: 0, queued: 0, reservedCells: 0 })
})

t.test('per-sequence sampling status: "nothing allowed" ends one sequence normally, an error only its own', async (t) => {
  const { ctx, submit } = setup()
  const a = submit([1, 2], { maxTokens: 8 })
  const b = submit([3, 4], { maxTokens: 8 })
  const textA = collect(a)
  let call = await ctx.nextStep()
  call.settle()
  call = await ctx.nextStep()
  t.equal(call.sampleAt.length, 2)
  const slotA = call.seqIds[call.sampleAt[0]!]
  const status = Int32Array.from(call.sampleAt.map((at) => (call.seqIds[at] === slotA ? 1 : 0)))
  call.settle(undefined, { status, errors: ['', ''] })
  t.match(await a.result, { finishReason: 'stop', completionTokens: 1 })
  t.equal(textA.text(), 'c', 'the text before the end is kept')
  call = await ctx.nextStep()
  t.equal(call.sampleAt.length, 1, 'only b goes on')
  call.settle(undefined, { status: Int32Array.of(2), errors: ['grammar rejected the token'] })
  t.match(await b.result, { finishReason: 'error', error: { code: 'sampling_failed', message: 'grammar rejected the token' } })
})

t.test('a listener that throws cancels its own sequence only', async (t) => {
  const { ctx, submit } = setup()
  const a = submit([1], { maxTokens: 5 })
  const b = submit([2], { maxTokens: 5 })
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  t.teardown(() => void process.off('warning', onWarning))
  a.listen({ chunk: () => { throw new Error('a client bug') }, end: () => undefined })
  await Promise.all([runUntilDone(ctx, a), runUntilDone(ctx, b)])
  t.equal((await a.result).finishReason, 'cancelled')
  t.match(await b.result, { finishReason: 'length', completionTokens: 5 })
})

t.test('text held back for a stop string is released when generation ends another way', async (t) => {
  const { ctx, submit } = setup()
  // prompt token 1 ('a') makes the fake produce b, c, d, e ...: "bcd" is a prefix of the stop string "bcdx"
  const seq = submit([1], { maxTokens: 3, stop: ['bcdx'] })
  const out = collect(seq)
  await runUntilDone(ctx, seq)
  t.equal(out.text(), 'bcd')
  t.equal((await seq.result).finishReason, 'length')
  const stopped = submit([1], { maxTokens: 8, stop: ['de'] })
  const out2 = collect(stopped)
  await runUntilDone(ctx, stopped)
  t.match(await stopped.result, { finishReason: 'stop', stopString: 'de' })
  t.equal(out2.text(), 'bc')
})

t.test('end of generation, cancellation during a step, and the prompt cache', async (t) => {
  const { ctx, scheduler, submit } = setup()
  const eos = submit([1, 2, 3], { maxTokens: 8 })
  await runUntilDone(ctx, eos, () => 0)
  t.match(await eos.result, { finishReason: 'eos', completionTokens: 1 })
  const seq = submit([1, 2, 3, 4], { maxTokens: 8 })
  t.equal((await (async () => { const c = await ctx.nextStep(); return c.tokens.length })()), 1, 'the cached prefix is not decoded again')
  ctx.calls.at(-1)!.settle()
  const call = await ctx.nextStep()
  seq.cancel() // while a step is in flight: the cells are dropped once it settles
  t.equal((await seq.result).finishReason, 'cancelled')
  call.settle()
  await scheduler.idle()
  t.equal(scheduler.stats().usedCells, 4, 'only the prompt stays cached')
  t.equal(scheduler.stats().active, 0)
})

t.test('queue limits: 429 past the queue, capacity', async (t) => {
  const { scheduler, submit } = setup({ maxQueue: 1, nParallel: 1 })
  const a = submit([1], { maxTokens: 5 })
  const b = submit([1], { maxTokens: 5 })
  t.throws(() => submit([1], { maxTokens: 5 }), { code: 'queue_full', status: 429 })
  t.equal(scheduler.capacity, 2)
  a.cancel()
  b.cancel()
  await scheduler.idle()
})

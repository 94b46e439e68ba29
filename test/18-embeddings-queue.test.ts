// The embedding queue: chunking, round-robin interleaving, dropping aborted requests and the bound, first over a
// fake embedder the test completes call by call, then over the real model, then through the real server.
import { setImmediate, setTimeout } from 'node:timers/promises'
import t from 'tap'
import { EmbeddingQueue } from '../lib/embedding-queue.js'
import { defaultModelPath, native } from '../lib/index.js'
import type { QueueEmbedder } from '../lib/embedding-queue.js'
import { loadModel } from './helpers.js'
import { post, startTestServer } from './server-helpers.js'

interface Call {
  inputs: number[][]
  resolve: (v: Float32Array) => void
  reject: (err: unknown) => void
}

/** An embedder whose calls stay open until the test completes them; input → [first token, length, sum]. */
class FakeEmbedder implements QueueEmbedder {
  readonly calls: Call[] = []
  disposed = false
  constructor(
    readonly nCtx = 8,
    readonly nSeqMax = 2,
  ) {}

  facts() {
    return { nCtx: this.nCtx, nSeqMax: this.nSeqMax, nEmbd: 3, pooling: 'mean' }
  }

  embed(tokens: Int32Array, offsets: Int32Array): Promise<Float32Array> {
    const inputs: number[][] = []
    for (let i = 0; i + 1 < offsets.length; i++) inputs.push([...tokens.subarray(offsets[i]!, offsets[i + 1]!)])
    return new Promise((resolve, reject) => this.calls.push({ inputs, resolve, reject }))
  }

  dispose(): void {
    this.disposed = true
  }

  get open(): Call {
    return this.calls.at(-1)!
  }

  /** Completes the call in flight and lets the queue act on it (start the next chunk, settle requests). */
  async complete(): Promise<void> {
    this.open.resolve(Float32Array.from(this.open.inputs.flatMap(vector)))
    await setImmediate()
  }
}

const vector = (input: number[]) => [input[0]!, input.length, input.reduce((a, b) => a + b, 0)]
const ids = (first: number, n: number, len: number) => Array.from({ length: n }, (_, i) => Int32Array.from({ length: len }, (_, j) => first + i * 10 + j))
const plain = (vs: Float32Array[]) => vs.map((v) => [...v])

t.test('over a fake embedder', async (t) => {
  t.test('a request alone is chunked as the native embedder packs one call', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    const inputs = [[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4, 4, 4, 4], [5], [6, 6, 6, 6, 6, 6, 6, 6]].map((a) => Int32Array.from(a))
    const done = q.submit(inputs)
    while (q.stats().requests > 0) await fake.complete()
    t.same(
      fake.calls.map((c) => c.inputs.map((i) => i.length)),
      [[3, 3], [3], [6, 1], [8]],
      'at most nSeqMax inputs and nCtx tokens per call, inputs kept whole and in order',
    )
    t.same(plain(await done), inputs.map((i) => vector([...i])), 'vectors in input order')
    t.same(q.stats(), { requests: 0, inputs: 0, chunks: 4, aborted: 0 })
  })

  t.test('a one-input request submitted after two big ones finishes first', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    const order: string[] = []
    const big1 = q.submit(ids(100, 6, 4)).then((v) => (order.push('big1'), v))
    const big2 = q.submit(ids(200, 6, 4)).then((v) => (order.push('big2'), v))
    const small = q.submit(ids(300, 1, 2)).then((v) => (order.push('small'), v))
    t.equal(fake.calls.length, 1, 'the first chunk started at once')
    while (order.length < 3) await fake.complete()
    t.same(order, ['small', 'big1', 'big2'])
    t.same(fake.calls[1]!.inputs.map((i) => i[0]), [200, 300], 'the second chunk takes from the requests waiting behind the first')
    t.equal(fake.calls.length, 7, '13 inputs, 2 per chunk')
    t.same(plain(await big1), ids(100, 6, 4).map((i) => vector([...i])))
    t.same(plain(await big2), ids(200, 6, 4).map((i) => vector([...i])))
    t.same(plain(await small), [vector([300, 301])])
  })

  t.test('requests take turns, chunk by chunk', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    // every input fills a chunk on its own
    const all = Promise.all([q.submit(ids(100, 3, 8)), q.submit(ids(200, 2, 8)), q.submit(ids(300, 3, 8))])
    while (q.stats().requests > 0) await fake.complete()
    t.same(
      fake.calls.map((c) => c.inputs[0]![0]),
      [100, 200, 300, 110, 210, 310, 120, 320],
      'round-robin; a finished request leaves the rotation',
    )
    await all
  })

  t.test("an aborted request's remaining inputs never run", async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    const ac = new AbortController()
    const big = q.submit(ids(100, 10, 4), ac.signal)
    const other = q.submit(ids(500, 1, 4))
    await fake.complete()
    t.same(fake.open.inputs.map((i) => i[0]), [500, 120], 'the second chunk is in flight, shared with another request')
    ac.abort(new Error('client went away'))
    await t.rejects(big, { message: 'client went away' }, 'rejected at once, while its chunk still runs')
    t.same(q.stats(), { requests: 1, inputs: 1, chunks: 2, aborted: 1 }, 'its inputs stop counting at once')
    await fake.complete()
    t.same(plain(await other), [vector([500, 501, 502, 503])], 'the request sharing the chunk gets its vector')
    t.equal(fake.calls.length, 2, 'no chunk of the aborted request ran after the one in flight (5 were needed)')
    t.same(q.stats(), { requests: 0, inputs: 0, chunks: 2, aborted: 1 })

    const queued = new AbortController()
    const first = q.submit(ids(600, 2, 8))
    const dropped = q.submit(ids(700, 4, 8), queued.signal)
    queued.abort()
    await t.rejects(dropped, { name: 'AbortError' }, 'the signal’s reason')
    while (q.stats().requests > 0) await fake.complete()
    await first
    t.notOk(fake.calls.some((c) => c.inputs.some((i) => i[0]! >= 700)), 'a request aborted while waiting never runs at all')

    const before = fake.calls.length
    await t.rejects(q.submit(ids(800, 1, 1), AbortSignal.abort()), { name: 'AbortError' }, 'already aborted')
    t.equal(fake.calls.length, before)
  })

  t.test('the bound: queue_full past it, invalid_parameter for a request larger than the whole queue', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000, maxQueue: 5 })
    const a = q.submit(ids(100, 3, 8))
    t.throws(() => q.submit(ids(200, 3, 8)), { code: 'queue_full', status: 429, type: 'rate_limit_error', message: /3 inputs waiting, at most 5/ })
    const b = q.submit(ids(300, 2, 8))
    t.throws(() => q.submit(ids(400, 1, 1)), { code: 'queue_full' }, 'full')
    t.throws(() => q.submit(ids(500, 6, 1)), { code: 'invalid_parameter', status: 400, param: 'input', message: /at most 5/ })
    await fake.complete()
    t.equal(q.stats().inputs, 4, 'embedded inputs make room')
    const c = q.submit(ids(600, 1, 1))
    while (q.stats().requests > 0) await fake.complete()
    await Promise.all([a, b, c])
    t.throws(() => new EmbeddingQueue(fake, { nVocab: 1000, maxQueue: 0 }), { code: 'invalid_parameter' })
  })

  t.test('a failed chunk fails the requests in it; the others go on', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    const a = q.submit(ids(100, 1, 8))
    const b = q.submit(ids(200, 1, 8))
    fake.open.reject(Object.assign(new Error('llama_decode returned -3'), { code: 'decode_failed' }))
    await t.rejects(a, { code: 'decode_failed', status: 500 })
    await fake.complete()
    t.same(plain(await b), [vector([...ids(200, 1, 8)[0]!])])
    t.same(q.stats(), { requests: 0, inputs: 0, chunks: 2, aborted: 0 })
  })

  t.test('inputs the embedder cannot take are refused before anything runs', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    t.throws(() => q.submit([]), { code: 'invalid_input', param: 'input' })
    t.throws(() => q.submit([Int32Array.of(1), Int32Array.of()]), { code: 'invalid_input', message: 'input 1 is empty' })
    t.throws(() => q.submit([new Int32Array(9)]), { code: 'context_length_exceeded', message: /9 tokens; the embedding context holds 8/ })
    t.throws(() => q.submit([Int32Array.of(5, 1000)]), { code: 'invalid_token', message: /1000 is outside the vocabulary \(0\.\.999\)/ })
    t.throws(() => q.submit([Int32Array.of(-1)]), { code: 'invalid_token' })
    t.equal(fake.calls.length, 0)
    t.same(q.stats(), { requests: 0, inputs: 0, chunks: 0, aborted: 0 })
  })

  t.test('close lets admitted requests finish, then disposes the embedder', async (t) => {
    const fake = new FakeEmbedder(8, 2)
    const q = new EmbeddingQueue(fake, { nVocab: 1000 })
    const a = q.submit(ids(100, 3, 8))
    let closed = false
    const closing = q.close().then(() => (closed = true))
    t.throws(() => q.submit(ids(1, 1, 1)), { code: 'model_disposed' })
    await fake.complete()
    await fake.complete()
    t.notOk(closed || fake.disposed, 'still working')
    await fake.complete()
    await closing
    t.ok(fake.disposed)
    t.equal((await a).length, 3)
  })
})

t.test('over the real model', async (t) => {
  const texts = [
    'It is a truth universally acknowledged',
    'In the beginning God created the heaven and the earth.',
    'Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition, seemed to unite some of the best blessings of existence',
    'And the earth was without form, and void; and darkness was upon the face of the deep.',
    'Mr. Darcy',
  ]

  t.test('vectors equal those of one unchunked native call', async (t) => {
    const m = await native.loadModel(defaultModelPath, {})
    const reference = await native.createEmbedder(m, { nCtx: 256, nSeqMax: 16, threads: 1 })
    const chunked = await native.createEmbedder(m, { nCtx: 256, nSeqMax: 16, threads: 1 })
    const q = new EmbeddingQueue(chunked, { nVocab: m.facts().nVocab })
    t.teardown(async () => {
      reference.dispose()
      await q.close()
      m.dispose()
    })
    const inputs = Array.from({ length: 40 }, (_, i) => m.tokenize(texts[i % texts.length]!.repeat(1 + (i % 4)), true, false))
    const offsets = new Int32Array(inputs.length + 1)
    inputs.forEach((x, i) => (offsets[i + 1] = offsets[i]! + x.length))
    const flat = new Int32Array(offsets.at(-1)!)
    inputs.forEach((x, i) => flat.set(x, offsets[i]!))
    const whole = await reference.embed(flat, offsets)
    const nEmbd = q.nEmbd
    const expected = inputs.map((_, i) => [...whole.subarray(i * nEmbd, (i + 1) * nEmbd)])

    const alone = await q.submit(inputs)
    t.ok(q.stats().chunks > 1, `split into ${q.stats().chunks} chunks`)
    t.same(plain(alone), expected, 'a request alone: bit for bit')

    // interleaved with other requests, an input shares its batch with others' inputs: within float rounding
    const [a, b, c] = await Promise.all([q.submit(inputs.slice(0, 20)), q.submit(inputs.slice(20, 23)), q.submit(inputs.slice(23))])
    const together = [...a, ...b, ...c]
    let worst = 0
    together.forEach((v, i) => v.forEach((x, d) => (worst = Math.max(worst, Math.abs(x - expected[i]![d]!)))))
    t.ok(worst < 1e-4, `interleaved requests: largest difference ${worst}`)
  })

  t.test('Model.embed: a one-word request overtakes two big ones; an aborted one stops', async (t) => {
    const model = await loadModel(t, { parallel: 1, warmup: false })
    await model.embed(['warm'])
    const big = Array.from({ length: 48 }, (_, i) => texts[i % 4]!.repeat(3))
    const order: string[] = []
    // the big ones given as tokens are queued at once, in this order; the word is tokenized on a worker first
    const bigTokens = big.map((text) => model.tokenize(text))
    const runs = [
      model.embed(bigTokens).then(() => order.push('big1')),
      model.embed(bigTokens).then(() => order.push('big2')),
      model.embed(['Emma']).then(() => order.push('small')),
    ]
    await Promise.all(runs)
    t.same(order, ['small', 'big1', 'big2'])

    let start = model.embeddingStats().chunks
    await model.embed(bigTokens)
    const needed = model.embeddingStats().chunks - start
    start += needed
    const ac = new AbortController()
    // given as tokens, it is queued at once; the text below is tokenized on a worker first, so it arrives after
    const dropped = model.embed(bigTokens, { signal: ac.signal })
    // chunk 1 is the big request's alone, chunk 2 shares the big request's turn with this one; when it resolves,
    // chunk 3 (the big request's) is already in flight
    await model.embed(['Elizabeth'])
    ac.abort()
    await t.rejects(dropped, { name: 'AbortError' })
    t.equal(model.embeddingStats().chunks - start, 3)
    await model.embed(['Jane']) // runs once the chunk in flight is done
    const stats = model.embeddingStats()
    t.equal(stats.chunks - start, 4, `no further chunk of the aborted request ran (it needed ${needed})`)
    t.ok(needed > 4)
    t.equal(stats.aborted, 1)
    t.same([stats.requests, stats.inputs], [0, 0])
  })
})

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  if (!m) throw new Error(`no ${name} in /metrics`)
  return Number(m[1])
}

/** Reads a /metrics value until `ok` holds (the server announces the event there). */
async function until(url: string, name: string, ok: (v: number) => boolean): Promise<number> {
  for (;;) {
    const v = await metric(url, name)
    if (ok(v)) return v
    await setTimeout(20)
  }
}

// 2,048 inputs of 250 tokens: a few thousand native calls, minutes on the test machine, unless dropped
const huge = Array.from({ length: 2048 }, (_, i) => Array.from({ length: 250 }, (_, j) => 3 + ((i * 7 + j * 13) % 1000)))

function bigRequest(baseURL: string): { settled: () => boolean; abort: () => void; done: Promise<unknown> } {
  const ac = new AbortController()
  let settled = false
  const done = fetch(`${baseURL}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: huge }),
    signal: ac.signal,
  }).then(
    (r) => r.text(),
    (err: Error) => err.name,
  )
  void done.finally(() => (settled = true))
  return { settled: () => settled, abort: () => ac.abort(), done }
}

t.test('through the real server', async (t) => {
  t.test('a one-word embedding is answered while two 2,048-input requests run; dropped when their clients go', async (t) => {
    const { url, baseURL, client } = await startTestServer(t)
    const a = bigRequest(baseURL)
    const b = bigRequest(baseURL)
    await until(url, 'hearth_embedding_requests_queued', (v) => v === 2)
    const one = await client.embeddings.create({ model: 'austen-kjv-2.6m-f32', input: 'Emma' })
    t.equal(one.data.length, 1)
    t.notOk(a.settled() || b.settled(), 'both big requests are still running')
    a.abort()
    b.abort()
    t.same(await Promise.all([a.done, b.done]), ['AbortError', 'AbortError'])
    await until(url, 'hearth_embedding_requests_queued', (v) => v === 0)
    t.equal(await metric(url, 'hearth_embedding_requests_aborted_total'), 2)
    t.equal(await metric(url, 'hearth_embedding_inputs_queued'), 0)
    t.ok((await metric(url, 'hearth_embedding_chunks_total')) < 2 * 2048, 'their remaining chunks never ran')
  })

  t.test('past --embeddings-queue: 429 queue_full with Retry-After', async (t) => {
    const { url, baseURL } = await startTestServer(t, ['--embeddings-queue', '2048'])
    const a = bigRequest(baseURL)
    await until(url, 'hearth_embedding_requests_queued', (v) => v === 1)
    const refused = await post(`${baseURL}/embeddings`, { input: 'Emma' })
    t.equal(refused.status, 429)
    t.equal(refused.headers.get('retry-after'), '1')
    t.match(refused.json, { error: { code: 'queue_full', type: 'rate_limit_error', param: null, message: /the embedding queue is full \(\d+ inputs waiting, at most 2048\)/ } })
    t.notOk(a.settled())
    a.abort()
    await a.done
    await until(url, 'hearth_embedding_requests_queued', (v) => v === 0)
    const after = await post(`${baseURL}/embeddings`, { input: 'Emma' })
    t.equal(after.status, 200, 'room again once the big request is dropped')
  })
})

// The continuous-batching scheduler on the real model: admission limits, prompt-cache reuse that never
// changes outputs, shared prefixes computed once, chunked prefill beside running streams, cancellation.
import t from 'tap'
import { HearthError, Model } from '../lib/index.js'
import { collect, loadModel, testModelOptions } from './helpers.js'

const PREFIX =
  'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ' +
  'However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed'

const KJV = 'And the LORD spake unto Moses in the wilderness of Sinai, in the tabernacle of the congregation, on the first day of the second month. '

t.test('admission: queue_full (429) past the queue, kv_cache_full (503) when the cache cannot hold a request', async (t) => {
  const model = await loadModel(t, { parallel: 2, maxQueue: 1 })
  const long = { temperature: 0.8, seed: 1, ignoreEos: true, maxTokens: 100 }
  const a = model.generate('In the beginning', long)
  const b = model.generate('In the beginning', long)
  const c = model.generate('In the beginning', long)
  t.match(model.stats(), { active: 2, queued: 1 }, 'admission happens at submit')
  try {
    model.generate('In the beginning', long)
    t.fail('a fourth request should not be taken')
  } catch (err) {
    t.ok(err instanceof HearthError)
    t.match(err, { code: 'queue_full', status: 429 })
  }
  for (const s of [a, b, c]) s.cancel()
  await Promise.all([a.result, b.result, c.result])

  const tight = await loadModel(t, { parallel: 2, maxQueue: 0, contextSize: 256, kvSize: 256 })
  const big = tight.generate(PREFIX, { temperature: 0, maxTokens: 150, ignoreEos: true })
  t.match(tight.stats(), { active: 1 })
  try {
    tight.generate(KJV.repeat(4), { temperature: 0, maxTokens: 10 })
    t.fail('the second long prompt cannot fit beside the first')
  } catch (err) {
    t.match(err, { code: 'kv_cache_full', status: 503 })
  }
  t.match(await big.result, { finishReason: 'length', completionTokens: 150 }, 'the first request is unharmed')
  // as LM Studio, llama-server and Ollama do: max_tokens past the room left generates until the context is full
  const past = await collect(tight.generate(PREFIX, { maxTokens: 250, ignoreEos: true }))
  t.match(past.result, { finishReason: 'length', completionTokens: 256 - tight.tokenize(PREFIX).length })
  t.throws(() => tight.generate(PREFIX.repeat(5), { maxTokens: 1 }), { code: 'context_length_exceeded', status: 400, param: 'prompt' }, 'a prompt that does not fit is a 400')
})

t.test('a prompt-cache hit never changes greedy output', async (t) => {
  const cold = await loadModel(t, { promptCache: false, parallel: 1 })
  const warm = await loadModel(t, { parallel: 2 })
  const questions = [' Who is Mr. Bingley?', ' And what of Jane?', ' Who is Mr. Bingley? Tell me more.']
  const reference = []
  for (const q of questions) reference.push(await collect(cold.generate(PREFIX + q, { temperature: 0, maxTokens: 30 })))
  t.ok(reference.every((r) => r.result.cachedTokens === 0), 'no reuse without the cache')
  const first = await collect(warm.generate(PREFIX + questions[0], { temperature: 0, maxTokens: 30 }))
  t.equal(first.text, reference[0]!.text)
  t.equal(first.result.cachedTokens, 0)
  for (const [i, q] of questions.entries()) {
    const hit = await collect(warm.generate(PREFIX + q, { temperature: 0, maxTokens: 30 }))
    t.ok(hit.result.cachedTokens >= warm.tokenize(PREFIX).length - 1, `question ${i}: the shared prefix came from the cache (${hit.result.cachedTokens})`)
    t.equal(hit.text, reference[i]!.text, `question ${i}: same text with and without the cache hit`)
    t.same(hit.result.tokens, reference[i]!.result.tokens)
  }
  // the whole previous exchange as the next prompt (a multi-turn follow-up) reuses generated cells too
  const turn1 = await collect(warm.generate(PREFIX, { temperature: 0, maxTokens: 20 }))
  const followUp = PREFIX + turn1.text + ' Indeed.'
  const turn2 = await collect(warm.generate(followUp, { temperature: 0, maxTokens: 20 }))
  const turn2Cold = await collect(cold.generate(followUp, { temperature: 0, maxTokens: 20 }))
  t.ok(turn2.result.cachedTokens > warm.tokenize(PREFIX).length, 'the generated turn was reused as well')
  t.equal(turn2.text, turn2Cold.text)
})

t.test('requests sharing a prefix at once compute it once', async (t) => {
  const cold = await loadModel(t, { promptCache: false, parallel: 1 })
  const model = await loadModel(t, { parallel: 4, batchSize: 32 })
  const questions = [' Who is Mr. Bingley?', ' And what of Jane?', ' What of Lizzy?', ' And Mr. Darcy?']
  const seqs = questions.map((q) => model.generate(PREFIX + q, { temperature: 0, maxTokens: 12 }))
  const results = await Promise.all(seqs.map(collect))
  const prefixLen = model.tokenize(PREFIX).length
  t.equal(results[0]!.result.cachedTokens, 0, 'the first computes the prefix')
  for (const r of results.slice(1)) t.ok(r.result.cachedTokens >= prefixLen - 2, `the others share it (${r.result.cachedTokens} cached)`)
  const stats = model.stats()
  t.ok(stats.cachedTokens >= 3 * (prefixLen - 2))
  for (const [i, q] of questions.entries()) {
    const ref = await collect(cold.generate(PREFIX + q, { temperature: 0, maxTokens: 12 }))
    t.equal(results[i]!.text, ref.text, `question ${i}: shared cells give the same text`)
  }
  const other = KJV
  const n = await Promise.all([0, 1, 2].map(() => collect(model.generate(other, { temperature: 0, maxTokens: 8 }))))
  const otherLen = model.tokenize(other).length
  t.ok(n[0]!.result.cachedTokens <= 1, 'the first computes the prompt (BOS may be cached)')
  t.same(n.slice(1).map((r) => r.result.cachedTokens), [otherLen - 1, otherLen - 1], 'identical prompts at once (n choices) share the whole prompt')
  t.equal(new Set(n.map((r) => r.text)).size, 1)
})

t.test('a long prompt is prefilled in chunks while other streams keep decoding', async (t) => {
  const model = await loadModel(t, { parallel: 2, batchSize: 16 })
  const running = model.generate('In the beginning', { temperature: 0.8, seed: 3, ignoreEos: true, maxTokens: 120 })
  const seen: number[] = []
  let longStarted = false
  let longFirst = false
  let tokensDuringPrefill = 0
  let fifth!: () => void
  const fiveSeen = new Promise<void>((resolve) => (fifth = resolve))
  const reader = (async () => {
    for await (const c of running.chunks()) {
      seen.push(c.token?.id ?? -1)
      if (seen.length === 5) fifth()
      if (longStarted && !longFirst) tokensDuringPrefill++
    }
  })()
  await fiveSeen
  const long = model.generate(PREFIX + PREFIX, { temperature: 0, maxTokens: 4 })
  longStarted = true
  for await (const _ of long) {
    longFirst = true
    break
  }
  const promptLen = long.prompt.length
  t.ok(promptLen > 100)
  t.ok(tokensDuringPrefill >= Math.floor(promptLen / 16) - 2, `the running stream got ${tokensDuringPrefill} tokens during a ${promptLen}-token prefill in 16-token steps`)
  running.cancel()
  await reader
})

t.test('cancellation frees the cells a request generated', async (t) => {
  const model = await loadModel(t, { parallel: 2, contextSize: 256, kvSize: 256 })
  const prompt = model.tokenize(PREFIX)
  const seq = model.generate(prompt, { temperature: 0.8, seed: 1, ignoreEos: true, maxTokens: 150 })
  let n = 0
  for await (const _ of seq) if (++n === 60) break
  await model.scheduler.idle()
  const stats = model.stats()
  t.equal(stats.active, 0)
  t.ok(stats.usedCells <= prompt.length, `only the prompt stays cached (${stats.usedCells} cells)`)
  // a request that needs nearly the whole cache runs at once
  const big = await collect(model.generate(PREFIX.repeat(2), { temperature: 0, maxTokens: 20, ignoreEos: true }))
  t.equal(big.result.finishReason, 'length')
  t.equal(big.result.completionTokens, 20)
})

t.test('a model can be disposed with requests queued and running', async (t) => {
  const model = await Model.load(undefined, { ...testModelOptions, parallel: 1 })
  const a = model.generate('In the beginning', { maxTokens: 30, ignoreEos: true })
  const b = model.generate('In the beginning', { maxTokens: 30, ignoreEos: true })
  await model.dispose()
  t.equal((await a.result).completionTokens, 30, 'running requests finish')
  t.equal((await b.result).completionTokens, 30, 'queued requests finish')
  t.throws(() => model.generate('x'), { code: 'model_disposed' })
})

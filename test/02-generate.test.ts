// Generation through the async token iterator on the real model: determinism, seeds, sampling
// parameters, stops, UTF-8, cancellation.
import t from 'tap'
import { collect, loadModel, PROMPT } from './helpers.js'

t.test('greedy generation is deterministic and continues the prompt', async (t) => {
  const model = await loadModel(t)
  const a = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 24 }))
  const b = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 24 }))
  t.equal(a.text, b.text)
  t.match(a.text, /^ that it was not aware of the country/, 'the known greedy continuation')
  t.equal(a.result.finishReason, 'length')
  t.equal(a.result.completionTokens, 24)
  t.equal(a.result.promptTokens, model.tokenize(PROMPT).length)
  t.same(a.result.tokens, b.result.tokens)
  t.equal(model.detokenize([model.facts.bos, ...a.result.tokens]), a.text.slice(1), 'pieces join to the detokenized text')
})

t.test('max_tokens gives finish length with exactly that many tokens', async (t) => {
  const model = await loadModel(t)
  for (const n of [1, 7, 50]) {
    const { result } = await collect(model.generate(PROMPT, { temperature: 0.9, seed: n, maxTokens: n, ignoreEos: true }))
    t.equal(result.finishReason, 'length', `max ${n}`)
    t.equal(result.completionTokens, n, `max ${n}: ${n} tokens`)
  }
  const zero = await collect(model.generate(PROMPT, { maxTokens: 0 }))
  t.equal(zero.text, '')
  t.equal(zero.result.completionTokens, 0)
  t.equal(zero.result.finishReason, 'length')
})

t.test('the same seed gives the same text, alone and beside four other sequences', async (t) => {
  const model = await loadModel(t)
  const params = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1234, maxTokens: 40, ignoreEos: true }
  const alone1 = await collect(model.generate(PROMPT, params))
  const alone2 = await collect(model.generate(PROMPT, params))
  t.equal(alone1.text, alone2.text, 'same seed, same text')
  const other = await collect(model.generate(PROMPT, { ...params, seed: 99 }))
  t.not(other.text, alone1.text, 'another seed, other text')
  const prompts = ['In the beginning', 'Mr. Darcy said', 'And the LORD spake unto Moses', 'Emma Woodhouse, handsome, clever']
  const crowd = prompts.map((p, i) => model.generate(p, { ...params, seed: i, maxTokens: 60 }))
  const seeded = model.generate(PROMPT, params)
  const [mine, ...rest] = await Promise.all([collect(seeded), ...crowd.map(collect)])
  t.ok(rest.every((r) => r.result.completionTokens === 60), 'the others ran in the same batches')
  t.equal(mine!.text, alone1.text, 'same seed beside four other sequences, same text')
})

t.test('top_k 1 equals greedy', async (t) => {
  const model = await loadModel(t)
  const greedy = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 30 }))
  const topk1 = await collect(model.generate(PROMPT, { temperature: 1.5, topK: 1, seed: 7, maxTokens: 30 }))
  t.equal(topk1.text, greedy.text)
})

t.test('logit_bias bans and forces tokens', async (t) => {
  const model = await loadModel(t)
  const greedy = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 5 }))
  const first = greedy.result.tokens[0]!
  const banned = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 5, logitBias: { [first]: -100 } }))
  t.not(banned.result.tokens[0], first, '-100 bans the greedy first token')
  t.notOk(banned.result.tokens.includes(first), 'and it never appears')
  const forced = model.tokenize('LORD', { addSpecial: false })
  t.equal(forced.length, 1, "'LORD' is one token (with its leading space)")
  const out = await collect(model.generate(PROMPT, { temperature: 0.7, seed: 3, maxTokens: 6, logitBias: { [forced[0]!]: 100 } }))
  t.same(out.result.tokens, Array(6).fill(forced[0]), '+100 forces the token')
  t.equal(out.text, ' LORD'.repeat(6))
  t.throws(() => model.generate(PROMPT, { logitBias: { '12': 101 } }), { code: 'invalid_parameter', param: 'logit_bias' })
  t.throws(() => model.generate(PROMPT, { logitBias: { '5000': 1 } }), { code: 'invalid_token', param: 'logit_bias' })
  t.throws(() => model.generate(PROMPT, { grammar: 'root ::= (' }), { code: 'invalid_grammar', param: 'grammar' })
  const after = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 3 }))
  t.equal(after.result.completionTokens, 3, 'refused requests leave the scheduler working')
})

t.test('stop strings never appear in the output', async (t) => {
  const model = await loadModel(t)
  const greedy = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 40 }))
  t.ok(greedy.text.includes(' country'), 'the greedy text has the word the stop is made of')
  for (const stop of [' country', 'coun', 'y,', 'circumstance of']) {
    const { text, pieces, result } = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 40, stop: [stop, 'never there'] }))
    t.equal(result.finishReason, 'stop', `stop ${JSON.stringify(stop)}`)
    t.equal(result.stopString, stop)
    t.notOk(text.includes(stop), `${JSON.stringify(stop)} is not in the output`)
    t.equal(text, greedy.text.slice(0, greedy.text.indexOf(stop)), 'everything before the stop string is there')
    t.ok(pieces.every((p) => !p.includes(stop)), 'no piece holds it')
  }
  const prefixEnd = await collect(model.generate(PROMPT, { temperature: 0, maxTokens: 2, stop: [' that it was not'] }))
  t.equal(prefixEnd.text, ' that it', 'held-back text that never became a stop string is released at the end')
  t.equal(prefixEnd.result.finishReason, 'length')
})

t.test('multi-byte UTF-8 output is never split', async (t) => {
  const model = await loadModel(t)
  // the grammar forces characters the vocabulary spells with byte tokens, one byte per step
  const wanted = '€é日本€'
  const { text, pieces, result } = await collect(model.generate(PROMPT, { grammar: `root ::= "${wanted}"`, temperature: 0, maxTokens: 40 }))
  const bytes = Buffer.byteLength(wanted)
  t.equal(text, wanted)
  t.equal(result.completionTokens, bytes + 1, 'one byte token per step, then end of generation')
  t.ok(pieces.every((p) => !p.includes('\uFFFD')), 'no replacement characters')
  t.same(pieces, [...wanted], 'each piece is one whole character')
})

t.test('break and abort free the slot at once', async (t) => {
  const model = await loadModel(t, { parallel: 2 })
  const long = { temperature: 0.8, seed: 1, ignoreEos: true, maxTokens: 200 }
  const a = model.generate(PROMPT, long)
  const b = model.generate(PROMPT, long)
  let n = 0
  for await (const _ of a) if (++n === 3) break
  t.equal((await a.result).finishReason, 'cancelled', 'break cancels')
  const ctrl = new AbortController()
  const c = model.generate(PROMPT, { ...long, signal: ctrl.signal })
  const d = model.generate(PROMPT, { temperature: 0, maxTokens: 5 })
  c.listen({ chunk: () => ctrl.abort(), end: () => undefined }) // abort at its first token
  t.match(await c.result, { finishReason: 'cancelled' }, 'abort cancels')
  t.ok((await c.result).completionTokens < 200, 'abort stopped it early')
  const done = await collect(d)
  t.equal(done.result.finishReason, 'length', 'a request that needs the freed slots still completes')
  t.ok(model.stats().active <= 1, 'cancelled sequences left their slots')
  b.cancel()
  await b.result
  await model.scheduler.idle()
  t.equal(model.stats().active, 0)
})

t.test('embeddings have the model dimension and unit norm', async (t) => {
  const model = await loadModel(t)
  const { vectors, promptTokens } = await model.embed(['It is a truth', 'In the beginning God created', 'It is a truth'])
  t.equal(vectors.length, 3)
  for (const v of vectors) {
    t.equal(v.length, model.facts.nEmbd)
    t.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'unit norm')
  }
  t.same([...vectors[0]!], [...vectors[2]!], 'same text, same vector')
  const cos = vectors[0]!.reduce((s, x, i) => s + x * vectors[1]![i]!, 0)
  t.ok(cos < 0.9999, 'different texts, different vectors')
  t.equal(promptTokens, ['It is a truth', 'In the beginning God created', 'It is a truth'].reduce((s, x) => s + model.tokenize(x).length, 0))
  await t.rejects(model.embed(['x'.repeat(5000)]), { code: 'context_length_exceeded' })
})

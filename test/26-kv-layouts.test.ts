// The KV layouts and the host-RAM prompt cache on the real model: a KV stream per sequence and one unified pool
// give the same greedy tokens; a shared prefix is reused across streams; a prompt restored from RAM gives what
// computing it gives; the RAM cache keeps the most recently used under its cap; seeded sampling beside other
// streams is the same in both layouts.
import t from 'tap'
import type { Model } from '../lib/index.js'
import { collect, loadModel } from './helpers.js'
import { startTestServer } from './server-helpers.js'

const PREFIX =
  'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ' +
  'However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed'
const OTHER = 'And the LORD spake unto Moses in the wilderness of Sinai, in the tabernacle of the congregation, on the first day'
const greedy = { temperature: 0, maxTokens: 24 }

async function tokens(model: Model, prompt: string, sampling: object = greedy): Promise<number[]> {
  return [...(await collect(model.generate(prompt, sampling))).result.tokens]
}

t.test('per-sequence streams and the unified pool give the same greedy output, shared prefixes included', async (t) => {
  const unified = await loadModel(t, { parallel: 4, kvLayout: 'unified', cacheRamBytes: 0 })
  const perSeq = await loadModel(t, { parallel: 4, kvLayout: 'per-seq', cacheRamBytes: 0 })
  t.equal(unified.kvCache.layout, 'unified')
  t.equal(perSeq.kvCache.layout, 'per-seq')
  t.equal(perSeq.stats().kvLayout, 'per-seq')
  const prompts = [PREFIX + ' Who is Mr. Bingley?', PREFIX + ' And what of Jane?', OTHER, PREFIX]
  const reference = await Promise.all(prompts.map((p) => tokens(unified, p)))
  // all at once in the per-seq layout: the three PREFIX prompts share their prefix across streams
  const runs = await Promise.all(prompts.map((p) => collect(perSeq.generate(p, greedy))))
  runs.forEach((r, i) => t.same([...r.result.tokens], reference[i], `prompt ${i}: same tokens in both layouts`))
  // later requests take the prefix from another sequence's stream (a copy across streams)
  const again = await collect(perSeq.generate(PREFIX + ' Who is Mr. Darcy?', greedy))
  t.ok(again.result.cachedTokens >= perSeq.tokenize(PREFIX).length - 1, `the shared prefix was reused (${again.result.cachedTokens} cached)`)
  t.same([...again.result.tokens], await tokens(unified, PREFIX + ' Who is Mr. Darcy?'), 'and the output is what computing it gives')
})

t.test('seeded sampling beside other streams is the same in both layouts', async (t) => {
  const seeded = { temperature: 0.9, seed: 42, maxTokens: 20, ignoreEos: true }
  const out: number[][] = []
  for (const kvLayout of ['unified', 'per-seq'] as const) {
    const model = await loadModel(t, { parallel: 3, kvLayout, cacheRamBytes: 0 })
    const noise = [model.generate(OTHER, { temperature: 1, seed: 7, maxTokens: 30, ignoreEos: true }), model.generate('In the beginning', { temperature: 1, seed: 8, maxTokens: 30, ignoreEos: true })]
    out.push(await tokens(model, PREFIX, seeded))
    await Promise.all(noise.map((s) => s.result))
  }
  t.same(out[1], out[0])
})

for (const kvLayout of ['per-seq', 'unified'] as const) {
  t.test(`${kvLayout}: a prompt restored from RAM gives what computing it gives, and is reported as cached`, async (t) => {
    // one sequence: every new prompt takes the slot, so the last one's cells go to RAM first
    const model = await loadModel(t, { parallel: 1, kvLayout, kvSize: 512, cacheRamBytes: 64 * 2 ** 20 })
    const cold = await loadModel(t, { parallel: 1, promptCache: false })
    const first = await collect(model.generate(PREFIX, greedy))
    await collect(model.generate(OTHER, greedy)) // saves PREFIX's cells, takes the slot
    const turn2 = PREFIX + first.text + ' And then?'
    const restored = await collect(model.generate(turn2, greedy))
    const stats = model.stats().ramCache!
    t.equal(stats.hits, 1, 'restored from RAM')
    t.ok(restored.result.cachedTokens >= model.tokenize(PREFIX).length - 1, `cached tokens reported (${restored.result.cachedTokens})`)
    t.equal(stats.restoredTokens, restored.result.cachedTokens)
    t.same([...restored.result.tokens], await tokens(cold, turn2), 'the same greedy tokens as computing the whole prompt')
  })
}

t.test('the RAM cache keeps the most recently used prompts under its cap', async (t) => {
  const model = await loadModel(t, { parallel: 1, kvSize: 512, cacheRamBytes: 64 * 2 ** 20 })
  const texts = [PREFIX, OTHER, 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse']
  for (const p of texts) await collect(model.generate(p, greedy))
  const one = model.stats().ramCache!
  t.equal(one.entries, 2, 'the two prompts that gave up the slot are saved')
  const perEntry = one.bytes / one.entries
  // a cache that holds about one entry: saving the next evicts the least recently used
  const small = await loadModel(t, { parallel: 1, kvSize: 512, cacheRamBytes: Math.ceil(perEntry * 1.5) })
  await collect(small.generate(PREFIX, greedy))
  await collect(small.generate(OTHER, greedy)) // PREFIX saved
  await collect(small.generate(texts[2]!, greedy)) // OTHER saved: PREFIX evicted
  const s = small.stats().ramCache!
  t.equal(s.entries, 1)
  t.equal(s.evictions, 1)
  const back = await collect(small.generate(OTHER + ' and', greedy))
  t.equal(small.stats().ramCache!.hits, 1, 'the most recent is still there ...')
  t.ok(back.result.cachedTokens >= small.tokenize(OTHER).length - 1, `... and restored (${back.result.cachedTokens} cached)`)
  const gone = await collect(small.generate(PREFIX + ' and', greedy))
  t.equal(small.stats().ramCache!.hits, 1, 'the least recently used was evicted: no hit')
  t.ok(gone.result.cachedTokens <= 1, 'nothing but the start token reused')
})

t.test('server: previous_response_id after the slot was taken restores from RAM; the KV flags; /metrics counts the cache', async (t) => {
  const { client, url } = await startTestServer(t, ['--parallel', '1', '--kv-layout', 'per-seq', '--cache-ram', '64', '--cache-type-k', 'q8_0'])
  const model = 'austen-kjv-2.6m-f32'
  const first = await client.responses.create({ model, input: PREFIX, max_output_tokens: 12, temperature: 0 })
  await client.responses.create({ model, input: OTHER, max_output_tokens: 12, temperature: 0 }) // takes the only slot
  const next = await client.responses.create({ model, previous_response_id: first.id, input: 'And then?', max_output_tokens: 8, temperature: 0 })
  t.ok(next.usage!.input_tokens_details.cached_tokens >= 60, `the earlier turn came back from RAM (${next.usage!.input_tokens_details.cached_tokens} cached)`)
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /hearth_prompt_cache_ram_hits_total 1\n/)
  t.match(metrics, /hearth_prompt_cache_ram_saves_total [1-9]/)
  t.match(metrics, /hearth_prompt_cache_ram_bytes [1-9]/)
  const refused = await startTestServer(t, ['--cache-type-v', 'q4_0', '--flash-attn', 'off']).then(
    () => 'started',
    (err: Error) => err.message,
  )
  t.match(refused, /--cache-type-v q4_0 needs flash attention/, 'a quantized V cache without flash attention is refused at start')
})

// One model's load never holds up another model's streams: model b's load is held open (a gate in its loader,
// which then loads the real model) while model a streams; a keeps producing tokens, and b serves once its load
// ends. The order of events is asserted, never time.
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { MemoryBudget } from '../lib/memory-budget.js'
import { ModelRegistry } from '../lib/model-registry.js'
import { defaultModelPath, Model } from '../lib/model.js'
import { PROMPT } from './helpers.js'
import { tempDir } from './server-helpers.js'

t.test('a stream on one model keeps producing tokens while another model loads', async (t) => {
  const dir = tempDir(t)
  for (const name of ['a', 'b']) copyFileSync(defaultModelPath, join(dir, `${name}.gguf`))
  let openGate!: () => void
  const gate = new Promise<void>((resolve) => (openGate = resolve))
  const events: string[] = []
  const registry = new ModelRegistry<Model>({
    dirs: [dir],
    budget: new MemoryBudget(2 ** 34),
    maxModels: 2,
    ttlMs: null,
    jit: true,
    loader: async (scanned, { id }) => {
      if (id === 'b') {
        events.push('b: load starts')
        await gate
      }
      const model = await Model.load(scanned.path, { id, threads: 1, parallel: 2, contextSize: 256, warmup: false })
      events.push(`${id}: loaded`)
      return model
    },
  })
  t.teardown(() => registry.close())

  const a = await registry.acquire('a', { purpose: 'generate' })
  const stream = a.model.generate(PROMPT, { temperature: 0, maxTokens: 200, ignoreEos: true })
  const b = registry.acquire('b', { purpose: 'generate' })
  let whileLoading = 0
  for await (const _piece of stream) {
    events.push('a: token')
    if (events.includes('b: load starts') && !events.includes('b: loaded')) whileLoading++
    // b's load is let go only after a has streamed 20 tokens during it
    if (whileLoading === 20) openGate()
  }
  t.ok(whileLoading >= 20, `a streamed ${whileLoading} tokens while b's load was under way`)
  a.release()
  const leaseB = await b
  t.ok(events.indexOf('b: loaded') > events.indexOf('b: load starts'))
  const answer = leaseB.model.generate(PROMPT, { temperature: 0, maxTokens: 3, ignoreEos: true })
  let pieces = 0
  for await (const _piece of answer) pieces++
  t.ok(pieces > 0, 'b serves once loaded')
  leaseB.release()
})

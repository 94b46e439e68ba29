// Is memory released on unload? Loads and unloads a ~500 MB bench-shaped model (qwen2.5-0.5b, Q8_0, random
// weights: bench/make-model.ts) through the model registry, as the server does, and prints the process's RSS
// before, while loaded and after each unload. The bar: after unloading, RSS is within 10% of before.
//   node --expose-gc dist/bench/model-rss.js [--rounds 3] [--type q8_0|q4_0|f16]
// Exits 1 when the last unload leaves RSS more than 10% above its level before the first load.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MemoryBudget } from '../lib/memory-budget.js'
import { ModelRegistry, modelLoader } from '../lib/model-registry.js'
import { ensureModel, type ModelType } from './make-model.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, type: { type: 'string', default: 'q8_0' } } })
const rounds = Number(values.rounds)
const path = await ensureModel('qwen2.5-0.5b', values.type as ModelType)
const dir = mkdtempSync(join(tmpdir(), 'hearth-rss-'))
symlinkSync(path, join(dir, 'bench.gguf'))
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`
// JS garbage (a model's token tables are JS strings) is collected first when node runs with --expose-gc, so what
// is left is what the model itself kept
const gc = (globalThis as { gc?: () => void }).gc
const rss = () => {
  gc?.()
  return process.memoryUsage.rss()
}

const registry = new ModelRegistry({ dirs: [dir], budget: new MemoryBudget(8 * 2 ** 30), loader: modelLoader({ contextSize: 512, parallel: 2, threads: 2 }, '') })
await registry.refresh()
const before = rss()
console.log(`before: ${mb(before)}${gc ? '' : ' (run node with --expose-gc to collect JS garbage before each measure)'}`)
let after = before
for (let i = 0; i < rounds; i++) {
  const { model } = await registry.load('bench', {})
  const gen = await (model.kind === 'llm' ? model.run({ prompt: 'Hello there', sampling: { maxTokens: 8 } }) : null)
  await gen?.result
  console.log(`round ${i + 1}: loaded ${mb(rss())} (llama.cpp reports ${mb(model.memoryUse().host)})`)
  await registry.unload('bench')
  after = rss()
  console.log(`round ${i + 1}: unloaded ${mb(after)} (JS heap ${mb(process.memoryUsage().heapUsed)})`)
}
await registry.close()
rmSync(dir, { recursive: true, force: true })
const ratio = after / before
console.log(`after/before: ${ratio.toFixed(3)} (${ratio <= 1.1 ? 'within' : 'MORE than'} 10%)`)
process.exitCode = ratio <= 1.1 ? 0 : 1

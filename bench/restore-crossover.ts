// Where restoring a saved prompt from host RAM becomes cheaper than computing it: on the benchmark model, prefills
// prompts of N tokens into sequence 0, saves the sequence (seqSave), and restores it into sequence 1 (seqRestore),
// timing each; prints computing vs restoring per N. lib/model.ts's MIN_RESTORE_TOKENS comes from this.
//   node dist/bench/restore-crossover.js [--type q8_0] [--threads N] [--lengths 8,16,32,64,128,256,512,1024] [--layout per-seq|unified]
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { native } from '../lib/native.js'
import { ensureModel, type ModelType } from './make-model.js'

const { values } = parseArgs({
  options: {
    type: { type: 'string', default: 'q8_0' },
    threads: { type: 'string' },
    lengths: { type: 'string', default: '8,16,32,64,128,256,512,1024' },
    layout: { type: 'string', default: 'per-seq' },
    reps: { type: 'string', default: '3' },
  },
})
const lengths = values.lengths.split(',').map(Number)
const threads = Number(values.threads ?? availableParallelism())
const reps = Number(values.reps)
const path = await ensureModel('qwen2.5-0.5b', values.type as ModelType)
const model = await native.loadModel(path, {})
const maxLen = Math.max(...lengths)
const ctx = await native.createContext(model, {
  nCtx: 2 * (maxLen + 8), nSeqMax: 2, nBatch: 512, nUbatch: 512, threads, threadsBatch: threads,
  kvUnified: values.layout === 'unified', flashAttention: 'auto', typeK: 'f16', typeV: 'f16',
})
const vocab = model.facts().nVocab
const ms = (t0: number) => performance.now() - t0

/** Decodes `n` tokens into `seq` in 512-token steps, sampling the last; returns the time taken. */
async function prefill(seq: number, n: number): Promise<number> {
  const t0 = performance.now()
  for (let at = 0; at < n; at += 512) {
    const len = Math.min(512, n - at)
    const tokens = Int32Array.from({ length: len }, (_, i) => 100 + ((at + i) * 7919) % (vocab - 200))
    const positions = Int32Array.from({ length: len }, (_, i) => at + i)
    const sampleAt = at + len >= n ? Int32Array.of(len - 1) : new Int32Array(0)
    await ctx.step(tokens, positions, new Int32Array(len).fill(seq), sampleAt)
  }
  return ms(t0)
}

console.log(`model ${path}, ${threads} threads, ${values.layout} KV; best of ${reps}`)
console.log('tokens | compute ms | save ms | restore ms | state MiB | restore / compute')
for (const n of lengths) {
  let compute = Infinity
  let save = Infinity
  let restore = Infinity
  let bytes = 0
  for (let r = 0; r < reps; r++) {
    ctx.seqRemove(0)
    ctx.seqRemove(1)
    compute = Math.min(compute, await prefill(0, n))
    let t0 = performance.now()
    const state = await ctx.seqSave(0)
    save = Math.min(save, ms(t0))
    bytes = state.byteLength
    t0 = performance.now()
    await ctx.seqRestore(1, state, -1)
    restore = Math.min(restore, ms(t0))
    state.dispose()
  }
  console.log(`${String(n).padStart(6)} | ${compute.toFixed(1).padStart(10)} | ${save.toFixed(2).padStart(7)} | ${restore.toFixed(2).padStart(10)} | ${(bytes / 2 ** 20).toFixed(2).padStart(9)} | ${(restore / compute).toFixed(3)}`)
}
ctx.dispose()
model.dispose()

// The addon on the real default model: loading, facts, tokens, bad files.
import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { FALLBACK_CHAT_TEMPLATE } from '../lib/index.js'
import { Model, defaultModelPath, HearthError, native } from '../lib/index.js'
import { contextOptions, loadModel } from './helpers.js'

t.test('loads the default model and reports its facts', async (t) => {
  const progress: number[] = []
  const model = await loadModel(t, { onProgress: (p) => progress.push(p) })
  t.equal(model.id, 'austen-kjv-2.6m-f32')
  t.equal(model.facts.architecture, 'llama')
  t.equal(model.facts.nParams, 2558400)
  t.equal(model.facts.nCtxTrain, 256)
  t.equal(model.facts.nVocab, 1024)
  t.equal(model.facts.nEmbd, 192)
  t.equal(model.facts.nLayer, 6)
  t.equal(model.facts.nHead, 6)
  t.equal(model.facts.nHeadKv, 2)
  t.equal(model.facts.bos, 1)
  t.equal(model.facts.eos, 2)
  t.equal(model.facts.eot, -1, 'no end-of-turn token')
  t.equal(model.facts.chatTemplate, null, 'a base model without a chat template')
  t.equal(model.chatTemplates.source, FALLBACK_CHAT_TEMPLATE, "hearth's fallback template is used")
  t.equal(model.metadata['general.architecture'], 'llama')
  t.same([...model.eog], [2])
  t.ok(progress.length > 1, 'progress was reported')
  t.equal(progress.at(-1), 1, 'progress ends at 1')
  t.ok(progress.every((p, i) => p >= 0 && p <= 1 && (i === 0 || p >= progress[i - 1]!)), 'progress rises within 0..1')
  t.equal(model.context.nSeqMax, 8)
  t.equal(model.context.nCtx, 4096)
})

t.test('tokenize and detokenize round-trip', async (t) => {
  const model = await loadModel(t)
  const texts = ['It is a truth universally acknowledged', 'In the beginning God created the heaven and the earth.', 'café € naïve 日本', '  two  spaces\nnew line']
  for (const text of texts) {
    const tokens = model.tokenize(text)
    t.equal(tokens[0], 1, 'BOS first')
    t.equal(model.detokenize(tokens), text, `round-trip ${JSON.stringify(text)}`)
    t.same(model.tokenize(text, { addSpecial: false }), tokens.subarray(1), 'addSpecial: false leaves BOS out')
  }
  t.same([...model.tokenize('€', { addSpecial: false })], [944, 229, 133, 175], 'byte fallback for characters outside the vocabulary')
  t.equal(model.detokenize([1, 2], true), '<s></s>', 'special tokens render only when asked')
  t.equal(model.detokenize([1, 2]), '')
  t.throws(() => model.detokenize([5000]), { code: 'invalid_token' })
})

t.test('bad model files are errors, never crashes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bad-'))
  const empty = join(dir, 'empty.gguf')
  const random = join(dir, 'random.gguf')
  const truncated = join(dir, 'truncated.gguf')
  const headerOnly = join(dir, 'header.gguf')
  writeFileSync(empty, '')
  writeFileSync(random, randomBytes(4096))
  const real = readFileSync(defaultModelPath)
  writeFileSync(truncated, real.subarray(0, real.length >> 1))
  writeFileSync(headerOnly, real.subarray(0, 64))
  const cases: [string, string, RegExp][] = [
    [join(dir, 'missing.gguf'), 'model_not_found', /not found/],
    [empty, 'invalid_model', /empty/],
    [random, 'invalid_model', /not a GGUF/],
    [truncated, 'model_load_failed', /corrupted or incomplete|failed to load/],
    [headerOnly, 'model_load_failed', /failed to load/],
  ]
  for (const [path, code, message] of cases) {
    const err = await Model.load(path, { threads: 1 }).then(
      () => null,
      (e: unknown) => e,
    )
    t.ok(err instanceof HearthError, `${path}: a HearthError`)
    t.match(err, { code, message }, `${path}: ${code}`)
  }
  const model = await loadModel(t)
  t.equal(model.tokenize('still alive').length > 1, true, 'the process still loads and uses models')
})

t.test('a model with live contexts cannot be disposed natively', async (t) => {
  const m = await native.loadModel(defaultModelPath, {})
  const ctx = await native.createContext(m, contextOptions({ nCtx: 256 }))
  t.throws(() => m.dispose(), { code: 'model_in_use' })
  ctx.dispose()
  m.dispose()
  t.throws(() => m.tokenize('x', true, false), { code: 'model_disposed' })
})

t.test('the native step validates its batch', async (t) => {
  const m = await native.loadModel(defaultModelPath, {})
  const ctx = await native.createContext(m, contextOptions({ nCtx: 256, nSeqMax: 2, nBatch: 8 }))
  t.teardown(() => {
    ctx.dispose()
    m.dispose()
  })
  const i32 = (...v: number[]) => Int32Array.from(v)
  t.throws(() => ctx.step(i32(1, 2), i32(0), i32(0, 0), i32()), { code: 'invalid_batch' })
  t.throws(() => ctx.step(i32(1), i32(0), i32(5), i32()), { code: 'invalid_sequence' })
  t.throws(() => ctx.step(i32(99999), i32(0), i32(0), i32()), { code: 'invalid_token' })
  t.throws(() => ctx.step(i32(...Array(9).fill(1)), i32(...Array(9).keys()), i32(...Array(9).fill(0)), i32()), { code: 'invalid_batch' })
  t.throws(() => ctx.step(i32(1, 2), i32(0, 1), i32(0, 0), i32(0, 1)), { code: 'invalid_batch' }, 'one sampled position per sequence')
  const pending = ctx.step(i32(1), i32(0), i32(0), i32(0))
  t.throws(() => ctx.seqRemove(0), { code: 'context_busy' }, 'nothing else runs while a step is in flight')
  const r = await pending
  t.equal(r.tokens.length, 1)
  t.same([...r.status], [0], 'per-entry status: sampled')
  t.same(r.errors, [''])
  t.same(ctx.seqRange(0), [0, 0])
})

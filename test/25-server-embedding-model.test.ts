// An embedding model (a BERT-style encoder) served beside the chat model: the random-weight encoder of the test
// models (test/models/encoder-model.ts, llama.cpp's "bert" layout) in a models folder, the built-in model as the
// start model. The encoder is listed as `type: "embeddings"`, JIT-loads for /v1/embeddings and gives the
// model's own vectors, refuses text generation with wrong_model_type, and the chat model keeps serving.
import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { EmbeddingModel } from '../lib/embedding-model.js'
import { ENCODER_SHAPE } from './models/encoder-model.js'
import { ensureTestModel } from './models/make-test-models.js'
import { failure, post, startTestServer, tempDir } from './server-helpers.js'

const BUILTIN = 'austen-kjv-2.6m-f32'
const ENCODER = 'bert-embed'

type ListEntry = { id: string; state: string; type: string; architecture: string; max_context_length: number }

t.test('an encoder in the models folder serves /v1/embeddings beside the chat model', async (t) => {
  const file = await ensureTestModel('bert-embed.gguf')
  const dir = tempDir(t)
  symlinkSync(file, join(dir, 'bert-embed.gguf'))
  const s = await startTestServer(t, ['--models-dir', dir])
  const list = async () => {
    const body = (await (await fetch(`${s.baseURL}/models`)).json()) as { data: ListEntry[] }
    return new Map(body.data.map((m) => [m.id, m]))
  }

  const before = await list()
  t.match(before.get(ENCODER), { type: 'embeddings', architecture: 'bert', state: 'not-loaded', max_context_length: ENCODER_SHAPE.contextLength }, 'listed as an embedding model')
  t.match(before.get(BUILTIN), { type: 'llm', state: 'loaded' })
  const lms = (await (await fetch(`${s.url}/api/v1/models`)).json()) as { models: { key: string; type: string }[] }
  t.equal(lms.models.find((m) => m.key === ENCODER)?.type, 'embedding', "LM Studio's REST API names it an embedding model")

  // JIT load on the first embeddings request
  const texts = ['Hello world.', 'The cat sat on the mat!', 'hello world']
  const r = await s.client.embeddings.create({ model: ENCODER, input: texts, encoding_format: 'float' })
  t.equal(r.model, ENCODER)
  t.equal(r.data.length, texts.length)
  for (const d of r.data) {
    t.equal(d.embedding.length, ENCODER_SHAPE.hidden, `input ${d.index}: n_embd values`)
    t.ok(d.embedding.every(Number.isFinite), `input ${d.index}: finite`)
    t.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-4, `input ${d.index}: normalised`)
  }
  t.notSame(r.data[0]!.embedding, r.data[1]!.embedding, 'different texts, different vectors')
  // WordPiece lower-cases, splits punctuation off and finds whole words: [CLS] hello world . [SEP] is 5 tokens,
  // [CLS] the cat sat on the mat ! [SEP] 9, [CLS] hello world [SEP] 4
  t.equal(r.usage.prompt_tokens, 18, 'BERT tokenization: [CLS] and [SEP] around word pieces')

  // the vectors are the encoder's own: the same as the library's EmbeddingModel on the same file
  const local = await EmbeddingModel.load(file, { threads: 1 })
  t.teardown(() => local.dispose())
  const { vectors } = await local.embed(texts)
  vectors.forEach((v, i) => {
    const norm = Math.hypot(...v)
    const served = r.data[i]!.embedding
    t.ok(served.every((x, j) => Math.abs(x - v[j]! / norm) < 1e-4), `input ${i}: the model's own pooled vector`)
  })

  const after = await list()
  t.match(after.get(ENCODER), { state: 'loaded', type: 'embeddings' }, 'loaded after the request')
  t.match(after.get(BUILTIN), { state: 'loaded' }, 'the chat model stays loaded beside it')

  // generation from the encoder is a clear 400
  const err = await failure(s.client.chat.completions.create({ model: ENCODER, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 }))
  t.equal(err.status, 400)
  t.match(err.error, { code: 'wrong_model_type', param: 'model', type: 'invalid_request_error' })
  t.match(err.message, /bert-embed.*embedding model/)
  const completion = await post(`${s.baseURL}/completions`, { model: ENCODER, prompt: 'Hi', max_tokens: 4 })
  t.equal(completion.status, 400)
  t.equal(completion.json.error.code, 'wrong_model_type', '/v1/completions refuses it too')

  // the chat model keeps serving, and embeds with its own vectors (its own width)
  const chat = await s.client.chat.completions.create({ model: BUILTIN, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0 })
  t.equal(chat.model, BUILTIN)
  t.equal(chat.usage?.completion_tokens, 4)
  const again = await s.client.embeddings.create({ model: ENCODER, input: texts[0]!, encoding_format: 'float' })
  // alike, not bit-equal: a batch of several sequences sums in another order
  const first = r.data[0]!.embedding
  t.ok(again.data[0]!.embedding.every((x, j) => Math.abs(x - first[j]!) < 1e-5), 'an input embeds alike alone or in a batch')
})

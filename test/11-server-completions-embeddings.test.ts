// /v1/completions and /v1/embeddings through the official openai client.
import t from 'tap'
import { failure, post, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const PROMPT = 'It is a truth universally acknowledged'

t.test('completions', async (t) => {
  const { client, baseURL } = await startTestServer(t)

  t.test('a string prompt, plain and streamed', async (t) => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 16, temperature: 0 })
    t.equal(r.object, 'text_completion')
    t.match(r.id, /^cmpl-/)
    t.match(r.choices[0]!.text, /^ that it was not aware of the country/)
    t.equal(r.choices[0]!.finish_reason, 'length')
    t.equal(r.usage!.completion_tokens, 16)
    t.equal(r.usage!.prompt_tokens, 19, 'BOS and 18 prompt tokens')
    const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } })
    let text = ''
    let usage = null
    let finish = null
    for await (const c of stream) {
      for (const ch of c.choices) {
        text += ch.text
        finish = ch.finish_reason ?? finish
      }
      if (c.usage) usage = c.usage
    }
    t.equal(text, r.choices[0]!.text)
    t.equal(finish, 'length')
    t.match(usage, { prompt_tokens: 19, completion_tokens: 16, total_tokens: 35 })
    t.equal(usage!.prompt_tokens_details!.cached_tokens, 18, 'the same prompt again comes from the cache')
  })

  t.test('default max_tokens is 16, as OpenAI', async (t) => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0.8, seed: 1, logit_bias: { 2: -100 } })
    t.equal(r.usage!.completion_tokens, 16)
  })

  t.test('token id prompts, several prompts, echo, logprobs', async (t) => {
    const ids = [1, 722, 353, 261, 259, 953, 317, 949, 348, 951, 324, 952, 739, 556, 968, 950, 328, 730, 878]
    const byIds = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 8, temperature: 0 })
    const byText = await client.completions.create({ model: MODEL, prompt: 'It is a truth universally acknowledged', max_tokens: 8, temperature: 0 })
    t.equal(byIds.choices[0]!.text, byText.choices[0]!.text, 'token ids and text give the same')
    const many = await client.completions.create({ model: MODEL, prompt: ['In the beginning', 'Mr. Darcy'], max_tokens: 4, n: 2, temperature: 0 })
    t.same(many.choices.map((c) => c.index), [0, 1, 2, 3])
    t.equal(many.choices[0]!.text, many.choices[1]!.text, 'greedy choices of one prompt agree')
    t.not(many.choices[0]!.text, many.choices[2]!.text, 'prompts differ')
    const echo = await client.completions.create({ model: MODEL, prompt: 'In the beginning', max_tokens: 4, temperature: 0, echo: true })
    t.equal(echo.choices[0]!.text, 'In the beginning' + many.choices[0]!.text)
    const lp = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4, temperature: 0, logprobs: 2 })
    const l = lp.choices[0]!.logprobs!
    t.equal(l.tokens!.length, 4)
    t.equal(l.tokens!.join(''), lp.choices[0]!.text)
    t.same(l.text_offset, [0, ...l.tokens!.slice(0, -1).map((_, i) => l.tokens!.slice(0, i + 1).join('').length)])
    t.ok(l.top_logprobs!.every((m) => Object.keys(m!).length >= 1))
  })

  t.test('unsupported options are clear 400s', async (t) => {
    t.match(await failure(client.completions.create({ model: MODEL, prompt: PROMPT, suffix: 'end' })), { status: 400, param: 'suffix' })
    t.match(await failure(client.completions.create({ model: MODEL, prompt: PROMPT, echo: true, logprobs: 1 })), { status: 400, param: 'echo' })
    const bad = await post(`${baseURL}/completions`, { prompt: [[1, 2], [99999]] })
    t.equal(bad.status, 400)
    t.equal(bad.json.error.code, 'invalid_token')
  })
})

t.test('embeddings', async (t) => {
  const { client, baseURL } = await startTestServer(t)
  const texts = ['It is a truth', 'In the beginning God created the heaven']
  const floats = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float' })
  t.equal(floats.object, 'list')
  t.equal(floats.data.length, 2)
  t.same(floats.data.map((d) => d.index), [0, 1])
  for (const d of floats.data) {
    t.equal(d.embedding.length, 192)
    t.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-5, 'unit norm')
  }
  t.ok(floats.usage.prompt_tokens > 0)
  t.equal(floats.usage.total_tokens, floats.usage.prompt_tokens)

  // raw base64 (the client would decode it for us): little-endian float32 equal to the float form
  const raw = await post(`${baseURL}/embeddings`, { model: MODEL, input: texts, encoding_format: 'base64' })
  t.equal(raw.status, 200)
  const decoded = raw.json.data.map((d: { embedding: string }) => {
    const b = Buffer.from(d.embedding, 'base64')
    return Array.from(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4))
  })
  t.same(decoded, floats.data.map((d) => d.embedding), 'base64 and float agree exactly')
  const viaClient = await client.embeddings.create({ model: MODEL, input: texts })
  t.same(viaClient.data.map((d) => d.embedding), floats.data.map((d) => d.embedding), 'the client decodes base64 to the same floats')

  const single = await client.embeddings.create({ model: MODEL, input: texts[0]!, encoding_format: 'float' })
  t.same(single.data[0]!.embedding, floats.data[0]!.embedding, 'a string input equals the same string in a list')
  const ids = await client.embeddings.create({ model: MODEL, input: [[1, 722, 353, 261, 259, 953]], encoding_format: 'float' })
  t.equal(ids.data[0]!.embedding.length, 192)

  const small = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float', dimensions: 16 })
  for (const [i, d] of small.data.entries()) {
    t.equal(d.embedding.length, 16)
    t.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-5, 'truncated vectors are re-normalised')
    const full = floats.data[i]!.embedding.slice(0, 16)
    const norm = Math.hypot(...full)
    t.ok(d.embedding.every((x, k) => Math.abs(x - full[k]! / norm) < 1e-5), 'truncate, then re-normalise')
  }
  t.match(await failure(client.embeddings.create({ model: MODEL, input: texts, dimensions: 500 })), { status: 400, param: 'dimensions' })
  t.match(await failure(client.embeddings.create({ model: MODEL, input: '' })), { status: 400, param: 'input' })
})

// /v1/chat/completions and /v1/models through the official openai client, over real HTTP.
import t from 'tap'
import { failure, post, sseEvents, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const messages = [{ role: 'user' as const, content: 'Tell me of Mr. Darcy.' }]

t.test('chat completions', async (t) => {
  const { client, baseURL } = await startTestServer(t)

  t.test('models list and retrieve', async (t) => {
    const list = await client.models.list()
    t.same(list.data.map((m) => m.id), [MODEL])
    t.equal(list.data[0]!.object, 'model')
    const one = await client.models.retrieve(MODEL)
    t.equal(one.id, MODEL)
    const byFile = await client.models.retrieve(`${MODEL}.gguf`)
    t.equal(byFile.id, MODEL, 'the file name names the model too')
    t.match(await failure(client.models.retrieve('gpt-4o')), { status: 404, code: 'model_not_found' })
  })

  t.test('non-streaming', async (t) => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 })
    t.match(r.id, /^chatcmpl-/)
    t.equal(r.object, 'chat.completion')
    t.equal(r.model, MODEL)
    t.equal(r.choices.length, 1)
    t.equal(r.choices[0]!.message.role, 'assistant')
    t.ok((r.choices[0]!.message.content ?? '').length > 0)
    t.equal(r.choices[0]!.finish_reason, 'length')
    t.equal(r.usage!.completion_tokens, 20)
    t.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 20)
    const again = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 })
    t.equal(again.choices[0]!.message.content, r.choices[0]!.message.content, 'greedy is repeatable (and the prompt cache does not change it)')
    t.equal(again.usage!.prompt_tokens_details!.cached_tokens, r.usage!.prompt_tokens - 1, 'the repeated prompt came from the cache')
  })

  t.test('streaming equals non-streaming, with the usage chunk', async (t) => {
    const plain = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 25, temperature: 0 })
    const stream = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 25, temperature: 0, stream: true, stream_options: { include_usage: true },
    })
    const chunks = []
    for await (const c of stream) chunks.push(c)
    const first = chunks[0]!
    t.same(first.choices[0]!.delta, { role: 'assistant', content: '', refusal: null }, 'the first delta has the role')
    const last = chunks.at(-1)!
    t.same(last.choices, [], 'the last chunk has no choices')
    t.same(last.usage, plain.usage, 'and the real usage')
    const finish = chunks.at(-2)!
    t.same(finish.choices[0]!.delta, {}, 'the finish chunk has an empty delta')
    t.equal(finish.choices[0]!.finish_reason, 'length')
    t.ok(chunks.slice(0, -1).every((c) => c.usage === null), 'every other chunk has usage: null')
    t.ok(chunks.every((c) => c.id === first.id && c.object === 'chat.completion.chunk'))
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
    t.equal(text, plain.choices[0]!.message.content, 'the stream says what the plain reply says')
  })

  t.test('the strict stream helper accepts the stream', async (t) => {
    const runner = client.chat.completions.stream({ model: MODEL, messages, max_tokens: 12, temperature: 0, stream_options: { include_usage: true } })
    let deltas = ''
    runner.on('content.delta', (e) => (deltas += e.delta))
    const final = await runner.finalChatCompletion()
    t.equal(final.choices[0]!.message.content, deltas)
    t.equal(final.choices[0]!.finish_reason, 'length')
    t.equal(final.usage?.completion_tokens, 12)
  })

  t.test('without include_usage there is no usage chunk', async (t) => {
    const r = await post(`${baseURL}/chat/completions`, { messages, max_tokens: 3, stream: true })
    const events = sseEvents(r.text)
    t.equal(events.at(-1)!.data, '[DONE]')
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data))
    t.ok(chunks.every((c) => !('usage' in c) && c.choices.length === 1))
    t.equal(r.headers.get('content-type'), 'text/event-stream')
  })

  t.test('n choices, seeds, stop and logprobs', async (t) => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 15, n: 3, seed: 5, temperature: 1 })
    t.same(r.choices.map((c) => c.index), [0, 1, 2])
    t.equal(r.usage!.completion_tokens, 45)
    const again = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 15, n: 3, seed: 5, temperature: 1 })
    t.same(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content), 'seeded choices repeat')
    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 10, n: 2, stream: true, seed: 1 })
    const finishes = new Map<number, string | null>()
    for await (const c of stream) for (const ch of c.choices) if (ch.finish_reason) finishes.set(ch.index, ch.finish_reason)
    t.same([...finishes.keys()].sort(), [0, 1], 'each streamed choice finishes')

    const greedy = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 30, temperature: 0 })
    const text = greedy.choices[0]!.message.content!
    const stop = text.slice(10, 14)
    const stopped = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 30, temperature: 0, stop })
    t.equal(stopped.choices[0]!.message.content, text.slice(0, text.indexOf(stop)))
    t.equal(stopped.choices[0]!.finish_reason, 'stop')

    const lp = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 })
    const content = lp.choices[0]!.logprobs!.content!
    t.equal(content.length, 5)
    t.equal(content.map((c) => c.token).join(''), lp.choices[0]!.message.content)
    for (const c of content) {
      t.ok(c.logprob <= 0)
      t.equal(c.top_logprobs.length, 3)
      t.equal(c.top_logprobs[0]!.token, c.token, 'greedy picks the most likely token')
      t.same(Buffer.from(c.bytes!).toString(), c.token)
    }
  })

  t.test('response_format json_object gives JSON', async (t) => {
    // a bias on '}' (byte token 128) lets the tiny model close its object at once
    const r = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 80, temperature: 0, response_format: { type: 'json_object' }, logit_bias: { 128: 20 },
    })
    const text = r.choices[0]!.message.content!
    t.equal(r.choices[0]!.finish_reason, 'stop', 'the grammar ended the object')
    t.same(JSON.parse(text), {}, `valid JSON: ${text}`)
    const free = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 30, temperature: 0.7, seed: 1, response_format: { type: 'json_object' } })
    t.match(free.choices[0]!.message.content, /^\{\s*("|\})/, 'unbiased output is an object too')
  })

  t.test('lenient message shapes', async (t) => {
    const r = await post(`${baseURL}/chat/completions`, {
      model: MODEL,
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You are Miss Bennet.' }] },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: null },
        { role: 'user', content: [{ type: 'text', text: 'And then?' }] },
      ],
      max_completion_tokens: 4,
      stop: 'never',
      store: false,
      prompt_cache_key: 'k',
    })
    t.equal(r.status, 200, r.text)
    t.equal(r.json.usage.completion_tokens, 4, 'max_completion_tokens is max_tokens')
  })

  t.test('a field this server does not know is a 400 naming it, as OpenAI answers', async (t) => {
    for (const field of ['unknown_field', 'audio', 'web_search_options', 'functions']) {
      const r = await post(`${baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, [field]: { x: 1 } })
      t.equal(r.status, 400)
      t.match(r.json.error, { code: 'unknown_parameter', param: field, message: `Unrecognized request argument supplied: ${field}` })
    }
  })
})

// Many clients at once: streams all complete with correct shapes, an aborted stream frees its slot at once,
// and admission past the queue is a 429 with Retry-After.
import t from 'tap'
import { post, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const long = { model: MODEL, messages: [{ role: 'user' as const, content: 'Tell me a long story.' }], max_tokens: 200, temperature: 0.8, ignore_eos: true }

async function gauge(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1])
}

/** Waits for the server to report `value` for `name` (polling its state, never a fixed sleep); fails after 30 s. */
async function reaches(url: string, name: string, value: number): Promise<boolean> {
  const until = Date.now() + 30000
  while (Date.now() < until) {
    if ((await gauge(url, name)) === value) return true
    await new Promise((r) => setImmediate(r))
  }
  return false
}

t.test('16 concurrent streams all complete with correct shapes', async (t) => {
  const { client } = await startTestServer(t)
  const runs = Array.from({ length: 16 }, async (_, i) => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: `Question ${i}: who is Emma?` }], max_tokens: 20 + i, temperature: 0.9, seed: i,
      stream: true, stream_options: { include_usage: true }, logit_bias: { 2: -100 },
    })
    let text = ''
    let finish = null
    let usage = null
    let roles = 0
    for await (const c of stream) {
      if (c.usage) usage = c.usage
      const ch = c.choices[0]
      if (!ch) continue
      if (ch.delta.role) roles++
      text += ch.delta.content ?? ''
      finish = ch.finish_reason ?? finish
    }
    return { text, finish, usage, roles, i }
  })
  const results = await Promise.all(runs)
  for (const r of results) {
    t.equal(r.roles, 1, `stream ${r.i}: one role delta`)
    t.equal(r.finish, 'length', `stream ${r.i}: finished`)
    t.equal(r.usage?.completion_tokens, 20 + r.i, `stream ${r.i}: its own token count`)
    t.ok(r.text.length > 0)
  }
})

t.test('an aborted stream frees its slot at once', async (t) => {
  // a long context, so a request that is not stopped runs for seconds: the abort, not its end, must stop it
  const { client, url, baseURL } = await startTestServer(t, ['--parallel', '2', '--ctx', '8192'])
  const controllers = [new AbortController(), new AbortController()]
  const streams = await Promise.all(controllers.map((c) => client.chat.completions.create({ ...long, stream: true }, { signal: c.signal })))
  const reading = streams.map(async (s) => {
    let n = 0
    try {
      for await (const _ of s) n++
    } catch {
      // aborted
    }
    return n
  })
  t.ok(await reaches(url, 'hearth_sequences_active', 2), 'both slots busy')
  controllers.forEach((c) => c.abort())
  const counts = await Promise.all(reading)
  t.ok(counts.every((n) => n < 200), 'the streams were cut short')
  // a request that needs every slot completes at once
  const both = await Promise.all([0, 1].map((i) => post(`${baseURL}/chat/completions`, { ...long, max_tokens: 5, seed: i })))
  t.same(both.map((r) => r.status), [200, 200])
  t.equal(await gauge(url, 'hearth_sequences_active'), 0, 'nothing left running')

  // a non-streaming request whose client goes away is cancelled too
  // (with ignore_eos it would run until the context is full; it must stop well before)
  const ctrl = new AbortController()
  const before = await gauge(url, 'hearth_generated_tokens_total')
  const pending = fetch(`${baseURL}/chat/completions`, { method: 'POST', body: JSON.stringify({ ...long, max_tokens: 4096 }), headers: { 'content-type': 'application/json' }, signal: ctrl.signal }).catch(() => null)
  t.ok(await reaches(url, 'hearth_sequences_active', 1), 'the request runs')
  ctrl.abort()
  await pending
  t.ok(await reaches(url, 'hearth_sequences_active', 0), 'the abandoned request stopped')
  const generated = (await gauge(url, 'hearth_generated_tokens_total')) - before
  t.ok(generated < 4000, `it was cut short (${generated} tokens, the context had room for over 8,000)`)
})

t.test('past the queue: 429 with Retry-After', async (t) => {
  // the first request runs until the context (8,192) is full: seconds, so the window below is not a race
  const { baseURL, url } = await startTestServer(t, ['--parallel', '1', '--max-queue', '1', '--ctx', '8192'])
  const first = post(`${baseURL}/chat/completions`, { ...long, max_tokens: 1000 })
  t.ok(await reaches(url, 'hearth_sequences_active', 1))
  const second = post(`${baseURL}/chat/completions`, { ...long, max_tokens: 3 })
  t.ok(await reaches(url, 'hearth_sequences_queued', 1), 'one request waits')
  const third = await post(`${baseURL}/chat/completions`, long)
  t.equal(third.status, 429)
  t.equal(third.json.error.code, 'queue_full')
  t.equal(third.json.error.type, 'rate_limit_error')
  t.equal(third.headers.get('retry-after'), '1')
  const [a, b] = await Promise.all([first, second])
  t.equal(a.status, 200)
  t.equal(a.json.usage.completion_tokens, 1000)
  t.equal(b.status, 200, 'the queued request ran once the slot was free')
})

t.test('a refused stream keeps its HTTP status', async (t) => {
  const { baseURL, url } = await startTestServer(t, ['--parallel', '1', '--max-queue', '0', '--ctx', '8192'])
  const first = post(`${baseURL}/chat/completions`, { ...long, max_tokens: 1000 })
  t.ok(await reaches(url, 'hearth_sequences_active', 1))
  for (const [path, body] of [
    ['chat/completions', { ...long, stream: true }],
    ['completions', { model: MODEL, prompt: 'In the beginning', stream: true, echo: true }],
    ['responses', { model: MODEL, input: 'Hello', stream: true }],
  ] as const) {
    const r = await post(`${baseURL}/${path}`, body)
    t.equal(r.status, 429, `${path}: 429, not a 200 stream with an error inside`)
    t.equal(r.json?.error?.code, 'queue_full')
  }
  t.equal((await first).status, 200)
})

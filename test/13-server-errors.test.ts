// Bad input gets an OpenAI-shaped error with the right status, and the server keeps serving.
import t, { type Test } from 'tap'
import { post, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const ok = { model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3 }

function isErrorShape(t: Test, json: any, status: number, code: string, param?: string | null) {
  t.type(json?.error?.message, 'string', 'error.message')
  t.type(json?.error?.type, 'string', 'error.type')
  t.ok('param' in (json?.error ?? {}), 'error.param')
  t.equal(json?.error?.code, code, `code ${code}`)
  if (param !== undefined) t.equal(json.error.param, param, `param ${param}`)
}

t.test('errors', async (t) => {
  const { baseURL, url } = await startTestServer(t, ['--body-limit', '20000'])
  const cases: [string, unknown, number, string, string | null | undefined][] = [
    ['malformed JSON', '{"messages": [', 400, 'invalid_json', undefined],
    ['a JSON array body', '[1,2]', 400, 'invalid_parameter', 'body'],
    ['missing messages', { model: MODEL }, 400, 'invalid_parameter', 'messages'],
    ['empty messages', { model: MODEL, messages: [] }, 400, 'invalid_parameter', 'messages'],
    ['wrong type', { ...ok, temperature: 'hot' }, 400, 'invalid_parameter', 'temperature'],
    ['out of range', { ...ok, temperature: 7 }, 400, 'invalid_parameter', 'temperature'],
    ['bad role', { model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }, 400, 'invalid_parameter', 'messages[0].role'],
    ['bad content part', { model: MODEL, messages: [{ role: 'user', content: [{ type: 'audio' }] }] }, 400, 'invalid_parameter', 'messages[0].content[0].type'],
    ['too many choices', { ...ok, n: 100 }, 400, 'invalid_parameter', 'n'],
    ['bad logit_bias', { ...ok, logit_bias: { x: 1 } }, 400, 'invalid_parameter', 'logit_bias'],
    ['logit_bias outside the vocabulary', { ...ok, logit_bias: { 99999: 1 } }, 400, 'invalid_token', 'logit_bias'],
    ['bad grammar', { ...ok, grammar: 'root ::= [' }, 400, 'invalid_grammar', 'grammar'],
    ['unknown model', { ...ok, model: 'gpt-4o' }, 404, 'model_not_found', 'model'],
    ['prompt overflow', { model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(400) }] }, 400, 'context_length_exceeded', 'messages'],
    ['tool_choice names no tool', { ...ok, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }], tool_choice: { type: 'function', function: { name: 'g' } } }, 400, 'invalid_parameter', 'tool_choice'],
    ['json_schema without a schema', { ...ok, response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, 400, 'invalid_parameter', 'response_format.json_schema.schema'],
    ['an unsupported schema keyword', { ...ok, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'email' } } } }, 400, 'unsupported_schema', 'response_format.json_schema.schema.format'],
  ]
  for (const [name, body, status, code, param] of cases) {
    const r = await post(`${baseURL}/chat/completions`, body)
    t.equal(r.status, status, `${name}: ${status}`)
    isErrorShape(t, r.json, status, code, param)
  }

  const huge = await post(`${baseURL}/chat/completions`, { ...ok, messages: [{ role: 'user', content: 'x'.repeat(30000) }] })
  t.equal(huge.status, 413, 'a body over the limit')
  isErrorShape(t, huge.json, 413, 'request_too_large')

  const route = await fetch(`${baseURL}/nothing`)
  t.equal(route.status, 404)
  isErrorShape(t, await route.json(), 404, 'not_found')
  const method = await fetch(`${baseURL}/chat/completions`)
  t.equal(method.status, 405)
  isErrorShape(t, await method.json(), 405, 'method_not_allowed')

  const malformed = await fetch(`${baseURL}/models/%E0%A4%A`)
  t.equal(malformed.status, 404, 'a malformed escape in the path is a 404, not a crash')

  const embed = await post(`${baseURL}/embeddings`, { model: MODEL, input: 42 })
  t.equal(embed.status, 400)
  isErrorShape(t, embed.json, 400, 'invalid_parameter', 'input')
  const resp = await post(`${baseURL}/responses`, { model: MODEL, input: [{ type: 'computer_call' }] })
  t.equal(resp.status, 400)
  isErrorShape(t, resp.json, 400, 'unsupported_parameter', 'input[0].type')
  const respOverflow = await post(`${baseURL}/responses`, { model: MODEL, input: 'word '.repeat(400) })
  isErrorShape(t, respOverflow.json, 400, 'context_length_exceeded', 'input')
  const completionOverflow = await post(`${baseURL}/completions`, { model: MODEL, prompt: 'word '.repeat(400) })
  isErrorShape(t, completionOverflow.json, 400, 'context_length_exceeded', 'prompt')
  const never = await post(`${baseURL}/completions`, { model: MODEL, prompt: Array(100).fill('hi'), n: 16, max_tokens: 2 })
  isErrorShape(t, never.json, 400, 'invalid_parameter', 'n')
  t.match(never.json.error.message, /1600 sequences/, 'a request that can never fit is a 400, not a 429')
  const respBadMax = await post(`${baseURL}/responses`, { model: MODEL, input: 'hi', max_output_tokens: -1 })
  isErrorShape(t, respBadMax.json, 400, 'invalid_parameter', 'max_output_tokens')

  // as LM Studio, llama-server and Ollama: max_tokens past the room left generates until the context is full
  const full = await post(`${baseURL}/chat/completions`, { ...ok, max_tokens: 100000, ignore_eos: true })
  t.equal(full.status, 200, 'max_tokens beyond the context is not an error')
  t.equal(full.json.choices[0].finish_reason, 'length')
  t.equal(full.json.usage.prompt_tokens + full.json.usage.completion_tokens, 256, 'it generated until the context was full')

  const after = await post(`${baseURL}/chat/completions`, ok)
  t.equal(after.status, 200, 'the server still serves')
  t.equal(after.json.usage.completion_tokens, 3)
  const health = await fetch(`${url}/health`)
  t.same(await health.json(), { status: 'ok', model: MODEL })
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /hearth_requests_total\{route="\/v1\/chat\/completions",status="400"\} \d+/)
  t.match(metrics, /hearth_sequences_active 0/)
  t.match(metrics, /hearth_time_to_first_token_seconds_count [1-9]/)
})

t.test('api key', async (t) => {
  const { baseURL, url, client } = await startTestServer(t, ['--api-key', 'sesame'])
  const none = await post(`${baseURL}/chat/completions`, ok)
  t.equal(none.status, 401)
  isErrorShape(t, none.json, 401, 'invalid_api_key')
  const wrong = await post(`${baseURL}/chat/completions`, ok, { authorization: 'Bearer nope' })
  t.equal(wrong.status, 401)
  const models = await fetch(`${baseURL}/models`)
  t.equal(models.status, 401, 'every /v1 route needs the key')
  const right = await post(`${baseURL}/chat/completions`, ok, { authorization: 'Bearer sesame' })
  t.equal(right.status, 200)
  t.equal((await client.models.list()).data.length, 1, 'the client sends the key')
  t.equal((await fetch(`${url}/health`)).status, 200, '/health needs no key')
})

t.test('cors', async (t) => {
  const { baseURL } = await startTestServer(t, ['--cors', 'http://example.test'])
  const pre = await fetch(`${baseURL}/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'http://example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
  })
  t.equal(pre.status, 204)
  t.equal(pre.headers.get('access-control-allow-origin'), 'http://example.test')
  t.match(pre.headers.get('access-control-allow-methods'), /POST/)
  const r = await fetch(`${baseURL}/models`, { headers: { origin: 'http://example.test' } })
  t.equal(r.headers.get('access-control-allow-origin'), 'http://example.test')
  const other = await fetch(`${baseURL}/models`, { headers: { origin: 'http://evil.test' } })
  t.equal(other.headers.get('access-control-allow-origin'), null, 'other origins get no CORS headers')
})

t.test('what the fuzzer found: too long to tokenize, nested too deep, grammars that complete under ignore_eos', async (t) => {
  const { baseURL, url } = await startTestServer(t)
  const newlines = await post(`${baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: '\n'.repeat(1_000_000) }] })
  isErrorShape(t, newlines.json, 400, 'context_length_exceeded', 'messages')
  const embed = await post(`${baseURL}/embeddings`, { model: MODEL, input: '\ud800'.repeat(333_333) })
  t.equal(embed.status, 400, 'an embedding input too long to fit is refused before it is tokenized')
  const deep = `{"model":"${MODEL}","input":[{"role":"user","content":[{"type":${'['.repeat(10_000)}1${']'.repeat(10_000)}}]}]}`
  const nested = await post(`${baseURL}/responses`, deep)
  isErrorShape(t, nested.json, 400, 'invalid_parameter', 'input')
  t.match(nested.json.error.message, /^input\[0\]\.content\[0\]\.type(\[0\])+\.\.\. is nested deeper than 512 levels$/)
  const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object' } } }
  const manyTools = await post(`${baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], tools: Array(129).fill(tool) })
  isErrorShape(t, manyTools.json, 400, 'invalid_parameter', 'tools')
  t.match(manyTools.json.error.message, /129 entries; at most 128/)
  const manyResponseTools = await post(`${baseURL}/responses`, { model: MODEL, input: 'hi', tools: Array(20_000).fill({ type: 'function', name: 'f', parameters: { type: 'object' } }) })
  isErrorShape(t, manyResponseTools.json, 400, 'invalid_parameter', 'tools')
  for (const grammar of ['root ::= ""', 'root ::= "yes" | "no"']) {
    const r = await post(`${baseURL}/completions`, { model: MODEL, prompt: 'hi', grammar, ignore_eos: true, max_tokens: 8 })
    t.equal(r.status, 200, `${grammar} with ignore_eos ends normally`)
    t.equal(r.json.choices[0].finish_reason, 'stop', 'the grammar is complete: stop')
  }
  const health = await fetch(`${url}/health`)
  t.equal(health.status, 200, 'the server is alive and serving')
})

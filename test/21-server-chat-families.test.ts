// Tool calls, structured output and reasoning through llama.cpp's chat layer on models that carry real chat
// templates (random weights, made by `npm run test-models`): each family's own tool-call format is forced by its
// grammar and parsed back into tool_calls, streamed and not; reasoning goes to reasoning_content, or stays inline.
import { Ajv } from 'ajv'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Model } from '../lib/index.js'
import { packageRoot } from '../lib/native.js'
import t from 'tap'
import { ensureTestModel, type TestModelFile } from './models/make-test-models.js'
import { post, sseEvents, startTestServer } from './server-helpers.js'

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
}
const ajv = new Ajv()

function callsOf(message: { tool_calls?: unknown[] | null }) {
  return (message.tool_calls ?? []).map((c) => {
    const call = c as { function: { name: string; arguments: string } }
    return { name: call.function.name, arguments: call.function.arguments }
  })
}

const families: { file: TestModelFile; id: string }[] = [
  { file: 'qwen2.5.gguf', id: 'qwen2.5' },
  { file: 'llama-3.x.gguf', id: 'llama-3.x' },
  { file: 'mistral.gguf', id: 'mistral' },
]

for (const family of families) {
  t.test(`${family.file}: a forced call in the family's own format, parsed into tool_calls`, async (t) => {
    const { client, baseURL } = await startTestServer(t, ['--model', await ensureTestModel(family.file), '--ctx', '2048', '--parallel', '2'])
    const body = {
      model: family.id,
      messages: [{ role: 'user' as const, content: 'Weather in Rome, in celsius?' }],
      tools: [weather],
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 200,
    }
    const r = await client.chat.completions.create(body)
    const c = r.choices[0]!
    t.equal(c.finish_reason, 'tool_calls')
    const calls = callsOf(c.message)
    t.equal(calls.length, 1)
    t.equal(calls[0]!.name, 'get_weather')
    t.ok(ajv.validate(weather.function.parameters, JSON.parse(calls[0]!.arguments)), `valid arguments: ${calls[0]!.arguments}`)
    t.notMatch(c.message.content ?? '', /get_weather/, 'the call is not left in the content')

    const streamed = await client.chat.completions.stream(body).finalChatCompletion()
    t.same(callsOf(streamed.choices[0]!.message), calls, 'streamed = non-streamed')
    const raw = await post(`${baseURL}/chat/completions`, { ...body, stream: true })
    const deltas = sseEvents(raw.text)
      .filter((e) => e.data !== '[DONE]')
      .flatMap((e) => (JSON.parse(e.data).choices[0]?.delta?.tool_calls ?? []) as { id?: string; function: { name?: string } }[])
    t.equal(deltas.filter((d) => d.function.name !== undefined).length, 1, 'the name is sent once')
    t.equal(deltas.filter((d) => d.id !== undefined).length, 1, 'the id is sent once')

    const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] }, score: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['answer', 'score'], additionalProperties: false }
    const json = await client.chat.completions.create({
      model: family.id,
      messages: [{ role: 'user', content: 'Is Rome warm?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'verdict', strict: true, schema } },
      temperature: 0,
      max_tokens: 200,
    })
    t.ok(ajv.validate(schema, JSON.parse(json.choices[0]!.message.content!)), `json_schema: ${json.choices[0]!.message.content}`)
  })
}

t.test('qwen3.gguf: the thinking goes to reasoning_content, stays inline with reasoning_format none, is off with effort none', async (t) => {
  const { client, baseURL } = await startTestServer(t, ['--model', await ensureTestModel('qwen3.gguf'), '--ctx', '2048', '--parallel', '2'])
  // random weights never think of their own accord: a grammar makes this model write a thinking block, then an answer
  const grammar = 'root ::= "<think>" [a-z ]{8,40} "</think>" [a-z ]{4,20}'
  const ask = { model: 'qwen3', messages: [{ role: 'user' as const, content: 'Think about Rome.' }], temperature: 0, max_tokens: 80, grammar }
  const r = await post(`${baseURL}/chat/completions`, ask)
  const m = r.json.choices[0].message
  t.match(m.reasoning_content, /^[a-z ]{8,40}$/, 'reasoning_content holds the thinking')
  t.match(m.content, /^[a-z ]{4,20}$/, 'the content holds only the answer')
  t.ok(r.json.usage.completion_tokens_details.reasoning_tokens > 0, 'reasoning tokens are counted')
  t.ok(r.json.usage.completion_tokens_details.reasoning_tokens < r.json.usage.completion_tokens)

  const inline = await post(`${baseURL}/chat/completions`, { ...ask, reasoning_format: 'none' })
  t.equal(inline.json.choices[0].message.content, `<think>${m.reasoning_content}</think>${m.content}`, 'reasoning_format none: as the model wrote it')
  t.equal(inline.json.choices[0].message.reasoning_content, undefined)

  const streamed = await post(`${baseURL}/chat/completions`, { ...ask, stream: true })
  const deltas = sseEvents(streamed.text)
    .filter((e) => e.data !== '[DONE]')
    .map((e) => JSON.parse(e.data).choices[0]?.delta ?? {})
  t.equal(deltas.map((d) => d.reasoning_content ?? '').join(''), m.reasoning_content, 'streamed as delta.reasoning_content')
  t.equal(deltas.map((d) => d.content ?? '').join(''), m.content, 'and the answer as delta.content')

  const off = await client.chat.completions.create({ model: 'qwen3', messages: ask.messages, temperature: 0, max_tokens: 8, reasoning_effort: 'none' as never })
  t.ok(off.usage!.prompt_tokens > (await client.chat.completions.create({ model: 'qwen3', messages: ask.messages, max_tokens: 1 })).usage!.prompt_tokens, 'effort none: the template closes the thinking in the prompt')

  const resp = await post(`${baseURL}/responses`, { model: 'qwen3', input: 'Think about Rome.', temperature: 0, max_output_tokens: 80, grammar })
  t.same(resp.json.output.map((o: { type: string }) => o.type), ['reasoning', 'message'], 'Responses: a reasoning item, then the message')
  t.equal(resp.json.output[0].content[0].text, m.reasoning_content)
  t.equal(resp.json.output[1].content[0].text, m.content)
  const events = sseEvents((await post(`${baseURL}/responses`, { model: 'qwen3', input: 'Think about Rome.', temperature: 0, max_output_tokens: 80, grammar, stream: true })).text)
  const types = events.map((e) => e.event)
  t.ok(types.includes('response.reasoning_text.delta') && types.includes('response.reasoning_text.done'), 'reasoning_text events')
  t.ok(types.indexOf('response.reasoning_text.done') < types.indexOf('response.output_text.delta'), 'the reasoning item closes before the message opens')
})

t.test('gpt-oss.gguf: reasoning_effort reaches the harmony template', async (t) => {
  // (its forced calls are not tested here: gpt-oss's grammar lets the analysis channel come first, and random
  // weights never leave it; the harmony parser itself is tested on fixed outputs in test/05)
  const file = await ensureTestModel('gpt-oss.gguf')
  const local = await Model.load(file, { threads: 1, parallel: 1, contextSize: 2048 })
  t.teardown(() => local.dispose())
  for (const effort of ['low', 'high']) {
    const prompt = await local.chatPrompt([{ role: 'user', content: 'Hi' }], { reasoningEffort: effort })
    t.match(local.detokenize(prompt, true), new RegExp(`Reasoning: ${effort}`), `effort ${effort} is in the system message`)
  }
  const { baseURL } = await startTestServer(t, ['--model', file, '--ctx', '2048'])
  const high = await post(`${baseURL}/chat/completions`, { model: 'gpt-oss', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, reasoning_effort: 'high' })
  t.equal(high.status, 200)
  const effort = await post(`${baseURL}/responses`, { model: 'gpt-oss', input: 'Hi', max_output_tokens: 1, reasoning: { effort: 'high' } })
  t.equal(effort.json.reasoning.effort, 'high')
  t.equal(effort.json.usage.input_tokens, high.json.usage.prompt_tokens, 'reasoning.effort on /v1/responses renders the same prompt')
})

t.test('fill-in-the-middle: suffix on a model with FIM tokens; a clear 400 on one without', async (t) => {
  const { client, baseURL } = await startTestServer(t, ['--model', await ensureTestModel('qwen2.5.gguf'), '--ctx', '2048'])
  const r = await client.completions.create({ model: 'qwen2.5', prompt: 'def add(a, b):\n    return', suffix: '\n\nprint(add(1, 2))\n', max_tokens: 8, temperature: 0 })
  t.equal(r.choices[0]!.finish_reason, 'length')
  const plain = await client.completions.create({ model: 'qwen2.5', prompt: 'def add(a, b):\n    return', max_tokens: 8, temperature: 0 })
  t.ok(r.usage!.prompt_tokens > plain.usage!.prompt_tokens + 3, 'the suffix and the three FIM tokens are in the prompt')
  const builtin = await startTestServer(t)
  const refused = await post(`${builtin.baseURL}/completions`, { prompt: 'x', suffix: 'y', max_tokens: 2 })
  t.equal(refused.status, 400)
  t.match(refused.json.error, { code: 'unsupported_parameter', param: 'suffix', message: /FIM tokens/ })
  t.ok(baseURL)
})

t.test('--chat-template-file overrides the model\'s template', async (t) => {
  const template = join(packageRoot, 'deps', 'llama.cpp', 'models', 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja')
  const plain = await startTestServer(t, ['--ctx', '2048'])
  const templated = await startTestServer(t, ['--ctx', '2048', '--chat-template-file', template])
  const body = { messages: [{ role: 'user', content: 'Weather in Rome?' }], tools: [weather], tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_tokens: 200 }
  const a = await post(`${plain.baseURL}/chat/completions`, body)
  const b = await post(`${templated.baseURL}/chat/completions`, body)
  t.not(a.json.usage.prompt_tokens, b.json.usage.prompt_tokens, 'a different prompt')
  t.equal(b.json.choices[0].finish_reason, 'tool_calls', "the template's own tool-call format is forced and parsed")
  t.ok(ajv.validate(weather.function.parameters, JSON.parse(b.json.choices[0].message.tool_calls[0].function.arguments)))
  const missing = spawnSync(process.execPath, [join(packageRoot, 'bin', 'hearth.js'), 'serve', '--port', '0', '--chat-template-file', '/nonexistent.jinja'], { encoding: 'utf8' })
  t.not(missing.status, 0)
  t.match(missing.stderr, /cannot read --chat-template-file \/nonexistent\.jinja/)
})

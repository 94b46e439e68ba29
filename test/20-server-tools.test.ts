// Tool calls and structured output on the built-in model, which has no chat template: hearth's own envelope under a
// grammar. Forced calls, named calls, streamed deltas exactly as OpenAI sends them (and equal to the non-streamed
// result), json_schema answers that validate, and the refusals that keep a schema from being silently ignored.
import { Ajv } from 'ajv'
import t from 'tap'
import { post, sseEvents, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'London', 'Rome'] }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
}
const time = {
  type: 'function' as const,
  function: { name: 'get_time', description: 'The time now', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 12 } }, required: ['zone'] } },
}
// one call per answer: a base model given room for parallel calls keeps adding them until max_tokens cuts it
const ask = { model: MODEL, messages: [{ role: 'user' as const, content: 'What is the weather in Paris?' }], tools: [weather, time], temperature: 0, max_tokens: 120, parallel_tool_calls: false }
const ajv = new Ajv()

t.test('tools on a model without a template', async (t) => {
  // the built-in model's context is 256; the tool descriptions alone take more
  const { client, baseURL } = await startTestServer(t, ['--ctx', '2048'])

  t.test('tool_choice "required": a call, valid arguments, finish_reason tool_calls', async (t) => {
    const r = await client.chat.completions.create({ ...ask, tool_choice: 'required' })
    const c = r.choices[0]!
    t.equal(c.finish_reason, 'tool_calls')
    t.equal(c.message.content, null, 'no content beside the calls')
    const calls = c.message.tool_calls!
    t.ok(calls.length >= 1)
    for (const call of calls) {
      if (call.type !== 'function') continue
      t.match(call.id, /^call_[0-9a-f]{24}$/)
      const tool = [weather, time].find((x) => x.function.name === call.function.name)
      t.ok(tool, `${call.function.name} is one of the tools`)
      const args = JSON.parse(call.function.arguments)
      t.ok(ajv.validate(tool!.function.parameters, args), `the arguments follow ${call.function.name}'s schema: ${call.function.arguments}`)
    }
  })

  t.test('a named tool_choice calls that tool; parallel_tool_calls false makes one call', async (t) => {
    const r = await client.chat.completions.create({ ...ask, tool_choice: { type: 'function', function: { name: 'get_time' } } })
    const calls = r.choices[0]!.message.tool_calls!
    t.equal(calls.length, 1)
    t.equal(calls[0]!.type === 'function' && calls[0]!.function.name, 'get_time')
    // with parallel calls allowed, this model goes on calling until the cut: length wins over tool_calls
    const many = await client.chat.completions.create({ ...ask, tool_choice: 'required', parallel_tool_calls: true, max_tokens: 60 })
    t.equal(many.choices[0]!.finish_reason, 'length', 'a call cut by max_tokens finishes with length, not tool_calls')
    t.ok(many.choices[0]!.message.tool_calls!.length >= 1)
  })

  t.test('streamed tool calls are exactly OpenAI deltas and add up to the non-streamed result', async (t) => {
    const body = { ...ask, tool_choice: 'required' as const }
    const plain = await client.chat.completions.create(body)
    const r = await post(`${baseURL}/chat/completions`, { ...body, stream: true })
    const chunks = sseEvents(r.text).filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data))
    const deltas = chunks.flatMap((c) => (c.choices[0]?.delta?.tool_calls ?? []) as Record<string, any>[])
    const seen = new Set<number>()
    const calls: { id: string; name: string; arguments: string }[] = []
    for (const d of deltas) {
      if (!seen.has(d.index)) {
        seen.add(d.index)
        t.same(Object.keys(d).sort(), ['function', 'id', 'index', 'type'], 'the first delta of a call has index, id, type, function')
        t.equal(d.type, 'function')
        t.equal(d.function.arguments, '', 'and empty arguments')
        calls[d.index] = { id: d.id, name: d.function.name, arguments: '' }
      } else {
        t.same(Object.keys(d).sort(), ['function', 'index'], 'later deltas carry only index and arguments')
        t.same(Object.keys(d.function), ['arguments'], 'never the name again')
        calls[d.index]!.arguments += d.function.arguments
      }
    }
    t.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls')
    const want = plain.choices[0]!.message.tool_calls!.map((c) => c.type === 'function' && { name: c.function.name, arguments: c.function.arguments })
    t.same(calls.map((c) => ({ name: c.name, arguments: c.arguments })), want, 'streamed = non-streamed')
    const final = await client.chat.completions.stream(body).finalChatCompletion()
    t.same(final.choices[0]!.message.tool_calls!.map((c) => c.type === 'function' && { name: c.function.name, arguments: c.function.arguments }), want, "the SDK's strict stream helper assembles the same calls")
  })

  t.test('history with tool calls and results goes through the template', async (t) => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'user', content: 'Weather in Rome?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome","unit":"c"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '21 degrees and sunny' },
      ],
      tools: [weather],
      max_tokens: 30,
      temperature: 0,
    })
    t.equal(r.choices[0]!.message.role, 'assistant')
    t.ok(r.usage!.prompt_tokens > 60, 'the tools, the call and its result are in the prompt')
  })

  t.test('json_schema answers validate against the schema, streamed and not', async (t) => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 20 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, maxItems: 3 },
        pet: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/pet' }] },
      },
      required: ['name', 'age', 'tags', 'pet'],
      additionalProperties: false,
      $defs: { pet: { type: 'object', properties: { kind: { type: 'string', enum: ['cat', 'dog'] } }, required: ['kind'], additionalProperties: false } },
    }
    const body = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Describe Emma as JSON.' }],
      response_format: { type: 'json_schema' as const, json_schema: { name: 'person', strict: true, schema } },
      temperature: 0,
      max_tokens: 200,
    }
    const r = await client.chat.completions.create(body)
    t.equal(r.choices[0]!.finish_reason, 'stop')
    const value = JSON.parse(r.choices[0]!.message.content!)
    t.ok(ajv.validate(schema, value), `valid: ${r.choices[0]!.message.content}`)
    const streamed = await client.chat.completions.stream(body).finalChatCompletion()
    t.equal(streamed.choices[0]!.message.content, r.choices[0]!.message.content, 'streamed = non-streamed')
    const resp = await client.responses.create({ model: MODEL, input: 'Describe Emma as JSON.', text: { format: { type: 'json_schema', name: 'person', schema, strict: true } }, temperature: 0, max_output_tokens: 200 })
    t.ok(ajv.validate(schema, JSON.parse(resp.output_text)), 'text.format json_schema on /v1/responses')
  })

  t.test('schemas the grammar cannot enforce are refused, naming the place', async (t) => {
    const bad = await post(`${baseURL}/chat/completions`, {
      model: MODEL,
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer', multipleOf: 3 } } } } },
    })
    t.equal(bad.status, 400)
    t.match(bad.json.error, { code: 'unsupported_schema', param: 'response_format.json_schema.schema.properties.n.multipleOf' })
    const deep = await post(`${baseURL}/chat/completions`, {
      model: MODEL,
      messages: [{ role: 'user', content: 'x' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: JSON.parse('{"type":"object","properties":{"a":'.repeat(200) + '{}' + '}}'.repeat(200)) } }],
      tool_choice: 'required',
    })
    t.equal(deep.status, 400)
    t.match(deep.json.error.param, /^tools\[0\]\.function\.parameters/)
    const after = await client.chat.completions.create({ ...ask, tool_choice: 'none', max_tokens: 3 })
    t.equal(after.choices[0]!.finish_reason, 'length', 'the server goes on serving')
  })

  t.test('responses: function tools over two turns, streamed events in order', async (t) => {
    const tools = [{ type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: weather.function.parameters, strict: true }]
    const first = await client.responses.create({ model: MODEL, input: 'Weather in Paris?', tools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_output_tokens: 200 })
    const call = first.output.find((o) => o.type === 'function_call')
    t.ok(call && call.type === 'function_call')
    if (!call || call.type !== 'function_call') return
    t.match(call.id, /^fc_/)
    t.match(call.call_id, /^call_/)
    t.equal(call.name, 'get_weather')
    t.ok(ajv.validate(weather.function.parameters, JSON.parse(call.arguments)))
    const second = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '18 degrees' }],
      tools,
      temperature: 0,
      max_output_tokens: 10,
    })
    t.equal(second.status, 'incomplete')
    t.ok(second.usage!.input_tokens > first.usage!.input_tokens, 'the call and its output are in the second prompt')
    const stream = client.responses.stream({ model: MODEL, input: 'Weather in Paris?', tools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_output_tokens: 200 })
    const types: string[] = []
    stream.on('event', (e) => types.push(e.type))
    const final = await stream.finalResponse()
    const fc = final.output.find((o) => o.type === 'function_call')
    t.ok(fc && fc.type === 'function_call' && fc.arguments === call.arguments, 'the strict stream helper assembles the same call')
    const at = types.indexOf('response.output_item.added')
    t.same(types.slice(at, at + 2), ['response.output_item.added', 'response.function_call_arguments.delta'])
    t.ok(types.includes('response.function_call_arguments.done'))
    t.equal(types.at(-1), 'response.completed')
  })
})

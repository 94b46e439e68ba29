// The official openai client's agent helpers against the real server: runTools (a forced first call, the tool's
// result sent back, a plain final answer), chat.completions.parse and responses.parse with zod schemas, function
// tools over two Responses turns (stored and stateless), and responses.stream's finalResponse with a tool.
// Random-weight test models never call tools or close JSON by themselves: a named tool_choice and json_schema
// grammars force valid output (bounded schemas), and later turns answer in plain text.
import OpenAI from 'openai'
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod'
import t from 'tap'
import { z } from 'zod'
import { ensureTestModel } from './models/make-test-models.js'
import { PLAIN_TURN_STOPS, recordingFetch, Verdict, WeatherArgs, weatherParameters } from './client-helpers.js'
import { post, startTestServer } from './server-helpers.js'

const QWEN = 'qwen2.5'
const BUILTIN = 'austen-kjv-2.6m-f32'
const responseTools = [{ type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters, strict: true }]

t.test('openai-node on a templated model (qwen2.5)', async (t) => {
  const server = await startTestServer(t, ['--model', await ensureTestModel('qwen2.5.gguf'), '--ctx', '2048', '--parallel', '2'])
  const { client, baseURL } = server

  t.test('runTools: a forced call, the tool runs on valid arguments, its result goes back, a final answer follows', async (t) => {
    // the first request names the tool; later ones are left as runTools sends them (tool_choice "auto")
    const rec = recordingFetch((body, i) => (i === 0 ? { ...body, tool_choice: { type: 'function', function: { name: 'get_weather' } } } : body))
    const forcing = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, fetch: rec.fetch })
    const calls: unknown[] = []
    const runner = forcing.chat.completions.runTools({
      model: QWEN,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather in a city',
            parameters: weatherParameters,
            parse: (text: string) => WeatherArgs.parse(JSON.parse(text)),
            function: (args: { city: string }) => {
              calls.push(args)
              return `18 degrees and sunny in ${args.city}`
            },
          },
        },
      ],
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 120,
      stop: PLAIN_TURN_STOPS,
    })
    const final = await runner.finalChatCompletion()
    t.equal(calls.length, 1, 'the tool ran once')
    t.ok(WeatherArgs.safeParse(calls[0]).success, `with arguments that satisfy its schema: ${JSON.stringify(calls[0])}`)
    t.equal(rec.sent.length, 2, 'two requests: the call, then the answer')
    const second = rec.sent[1]!.body as { messages: { role: string; content?: unknown; tool_call_id?: string; tool_calls?: { id: string }[] }[]; tool_choice?: unknown }
    t.equal(second.tool_choice, 'auto', 'the second request leaves the choice to the model')
    const [, assistant, toolMessage] = second.messages
    t.equal(assistant!.role, 'assistant')
    t.equal(toolMessage!.role, 'tool')
    t.equal(toolMessage!.tool_call_id, assistant!.tool_calls![0]!.id, "the result answers the model's call id")
    t.match(toolMessage!.content, /18 degrees and sunny in (Paris|Rome)/, "and carries the tool's result")
    const message = final.choices[0]!.message
    t.equal(final.choices[0]!.finish_reason, 'stop')
    t.equal(message.role, 'assistant')
    t.notOk(message.tool_calls?.length, 'the final message calls nothing')
    t.type(message.content, 'string')
    t.ok(message.content!.length > 0, `a plain final answer: ${JSON.stringify(message.content)}`)
    t.same(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant'], 'the whole exchange')
  })

  t.test('runTools streamed: the same exchange through the streaming runner', async (t) => {
    const rec = recordingFetch((body, i) => (i === 0 ? { ...body, tool_choice: { type: 'function', function: { name: 'get_weather' } } } : body))
    const forcing = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, fetch: rec.fetch })
    const calls: { city: string }[] = []
    const runner = forcing.chat.completions.runTools({
      model: QWEN,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters, parse: (text: string) => WeatherArgs.parse(JSON.parse(text)), function: (args: { city: string }) => (calls.push(args), 'rainy') } }],
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 120,
      stop: PLAIN_TURN_STOPS,
      stream: true,
    })
    const final = await runner.finalChatCompletion()
    t.equal(calls.length, 1)
    t.ok(rec.sent.every((r) => r.body.stream === true), 'every request streamed')
    t.equal(final.choices[0]!.finish_reason, 'stop')
    t.ok(final.choices[0]!.message.content, 'a final answer')
  })

  t.test('chat.completions.parse and responses.parse with zod formats give objects of the schema', async (t) => {
    const parsed = await client.chat.completions.parse({
      model: QWEN,
      messages: [{ role: 'user', content: 'Is Rome warm?' }],
      response_format: zodResponseFormat(Verdict, 'verdict'),
      temperature: 0,
      max_tokens: 80,
    })
    t.ok(Verdict.safeParse(parsed.choices[0]!.message.parsed).success, `chat: ${JSON.stringify(parsed.choices[0]!.message.parsed)}`)
    const resp = await client.responses.parse({ model: QWEN, input: 'Is Rome warm?', text: { format: zodTextFormat(Verdict, 'verdict') }, temperature: 0, max_output_tokens: 80 })
    t.ok(Verdict.safeParse(resp.output_parsed).success, `responses: ${JSON.stringify(resp.output_parsed)}`)
  })

  t.test('responses.create: a function call, then its output in a second turn (stored and stateless)', async (t) => {
    const first = await client.responses.create({ model: QWEN, input: 'Weather in Paris?', tools: responseTools, tool_choice: { type: 'function', name: 'get_weather' }, parallel_tool_calls: false, temperature: 0, max_output_tokens: 120 })
    t.equal(first.status, 'completed')
    const call = first.output.find((o) => o.type === 'function_call')
    if (!call || call.type !== 'function_call') return t.fail('a function_call item')
    t.equal(call.name, 'get_weather')
    t.ok(WeatherArgs.safeParse(JSON.parse(call.arguments)).success, `valid arguments: ${call.arguments}`)
    const output = { type: 'function_call_output' as const, call_id: call.call_id, output: '18 degrees and sunny' }
    const stored = await client.responses.create({ model: QWEN, previous_response_id: first.id, input: [output], tools: responseTools, temperature: 0, max_output_tokens: 8 })
    t.same(stored.output.map((o) => o.type), ['message'], 'the second turn answers in a message')
    t.ok(stored.usage!.input_tokens > first.usage!.input_tokens + 5, 'with the call and its output in the prompt')
    // what agents that keep their own history do: the first turn's output items go back as input
    const stateless = await client.responses.create({
      model: QWEN,
      store: false,
      input: [{ role: 'user', content: 'Weather in Paris?' }, call, output],
      tools: responseTools,
      temperature: 0,
      max_output_tokens: 8,
    })
    t.equal(stateless.usage!.input_tokens, stored.usage!.input_tokens, 'the same prompt as the stored conversation')
    t.equal(stateless.output_text, stored.output_text, 'and the same answer')
  })

  t.test('parallel_tool_calls false holds one call even when the weights would write more (hot sampling)', async (t) => {
    // llama.cpp's grammar for Qwen-style per-call markers allowed a run of calls whatever parallel_tool_calls said;
    // at this temperature several of these seeds wrote two or three calls, all of which came back
    for (const seed of [2, 4, 9, 12]) {
      const r = await post(`${baseURL}/chat/completions`, {
        model: QWEN,
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: weatherParameters } }],
        tool_choice: 'required',
        parallel_tool_calls: false,
        seed,
        temperature: 2,
        top_p: 1,
        top_k: 0,
        min_p: 0,
        max_tokens: 300,
      })
      t.equal(r.status, 200)
      t.equal(r.json.choices[0].finish_reason, 'tool_calls', `seed ${seed}: the turn ends after its call`)
      t.equal(r.json.choices[0].message.tool_calls.length, 1, `seed ${seed}: one call`)
    }
  })

  t.test("responses.stream with a tool: the strict helper's finalResponse", async (t) => {
    const stream = client.responses.stream({ model: QWEN, input: 'Weather in Paris?', tools: responseTools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_output_tokens: 120 })
    const argumentDeltas: string[] = []
    stream.on('response.function_call_arguments.delta', (e) => argumentDeltas.push(e.delta))
    const final = await stream.finalResponse()
    const call = final.output.find((o) => o.type === 'function_call')
    if (!call || call.type !== 'function_call') return t.fail('a function_call item')
    t.equal(final.status, 'completed')
    t.equal(argumentDeltas.join(''), call.arguments, 'the argument deltas add up to the arguments')
    t.same(call.parsed_arguments, JSON.parse(call.arguments), 'strict tools come back with parsed_arguments')
    t.ok(WeatherArgs.safeParse(call.parsed_arguments).success)
  })
})

t.test("runTools on Mistral, whose template takes only nine-character call ids: hearth's call_… ids go back", async (t) => {
  const { baseURL } = await startTestServer(t, ['--model', await ensureTestModel('mistral.gguf'), '--ctx', '2048'])
  const rec = recordingFetch((body, i) => (i === 0 ? { ...body, tool_choice: { type: 'function', function: { name: 'get_weather' } } } : body))
  const forcing = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, fetch: rec.fetch })
  const calls: { city: string }[] = []
  const runner = forcing.chat.completions.runTools({
    model: 'mistral',
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherParameters, parse: (text: string) => WeatherArgs.parse(JSON.parse(text)), function: (args: { city: string }) => (calls.push(args), 'rainy') } }],
    parallel_tool_calls: false,
    temperature: 0,
    max_tokens: 200,
    // this model's random weights soon repeat "lw", which its forced call cannot contain
    stop: ['lw'],
  })
  const final = await runner.finalChatCompletion()
  t.equal(calls.length, 1, 'the tool ran')
  const sentId = (rec.sent[1]!.body.messages as { tool_calls?: { id: string }[] }[])[1]!.tool_calls![0]!.id
  t.notMatch(sentId, /^[A-Za-z0-9]{9}$/, `the id sent back is one the template alone would refuse: ${sentId}`)
  t.same(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant'])
  t.ok(final.choices[0]!.message.content, 'a final answer')
})

t.test('openai-node on the built-in model (no template): parse through the plain json_schema grammar', async (t) => {
  const { client } = await startTestServer(t)
  const parsed = await client.chat.completions.parse({ model: BUILTIN, messages: [{ role: 'user', content: 'Is it a truth?' }], response_format: zodResponseFormat(Verdict, 'verdict'), temperature: 0, max_tokens: 60 })
  t.ok(Verdict.safeParse(parsed.choices[0]!.message.parsed).success, JSON.stringify(parsed.choices[0]!.message.parsed))
  const resp = await client.responses.parse({ model: BUILTIN, input: 'Is it a truth?', text: { format: zodTextFormat(Verdict, 'verdict') }, temperature: 0, max_output_tokens: 60 })
  t.ok(Verdict.safeParse(resp.output_parsed).success, JSON.stringify(resp.output_parsed))
  // zod writes regexes and its ISO times with \d, which hearth passes on as [0-9]
  const Slot = z.object({ phone: z.string().regex(/^\d{3}-\d{4}$/), at: z.iso.time({ precision: 0 }) })
  const slot = await client.chat.completions.parse({ model: BUILTIN, messages: [{ role: 'user', content: 'When?' }], response_format: zodResponseFormat(Slot, 'slot'), temperature: 0, max_tokens: 80 })
  t.ok(Slot.safeParse(slot.choices[0]!.message.parsed).success, `digit patterns held: ${JSON.stringify(slot.choices[0]!.message.parsed)}`)
})

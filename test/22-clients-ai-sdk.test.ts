// The Vercel AI SDK against the real server: generateObject with a zod schema through @ai-sdk/openai-compatible
// (chat completions) and through @ai-sdk/openai (the Responses API by default, and its chat model), and
// streamText with a forced tool whose call and result parts arrive. The requests each provider sends are
// recorded, so that a default field hearth refuses shows up here first.
import { createOpenAI } from '@ai-sdk/openai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { generateObject, generateText, stepCountIs, streamObject, streamText, tool } from 'ai'
import t from 'tap'
import { ensureTestModel } from './models/make-test-models.js'
import { recordingFetch, Verdict, WeatherArgs } from './client-helpers.js'
import { startTestServer } from './server-helpers.js'

const QWEN = 'qwen2.5'

const weatherTool = (calls: { city: string }[]) =>
  tool({
    description: 'The weather in a city',
    inputSchema: WeatherArgs,
    execute: async ({ city }) => {
      calls.push({ city })
      return `18 degrees and sunny in ${city}`
    },
  })

t.test('AI SDK 6 on a templated model (qwen2.5)', async (t) => {
  const { baseURL } = await startTestServer(t, ['--model', await ensureTestModel('qwen2.5.gguf'), '--ctx', '2048', '--parallel', '2'])

  t.test('generateObject through @ai-sdk/openai-compatible (json_schema)', async (t) => {
    const rec = recordingFetch()
    const provider = createOpenAICompatible({ name: 'hearth', baseURL, fetch: rec.fetch, supportsStructuredOutputs: true })
    const { object, finishReason } = await generateObject({ model: provider(QWEN), schema: Verdict, prompt: 'Is Rome warm?', temperature: 0, maxOutputTokens: 80, maxRetries: 0 })
    t.ok(Verdict.safeParse(object).success, JSON.stringify(object))
    t.equal(finishReason, 'stop')
    const body = rec.sent[0]!.body as { response_format?: { type: string; json_schema?: { schema?: unknown } } }
    t.match(rec.sent[0]!.url, /\/chat\/completions$/)
    t.equal(body.response_format?.type, 'json_schema', 'the schema goes as a json_schema response_format')
  })

  t.test('streamObject through both providers: partial objects, then one of the schema', async (t) => {
    const compatible = createOpenAICompatible({ name: 'hearth', baseURL, supportsStructuredOutputs: true })
    const openai = createOpenAI({ baseURL, apiKey: 'unused' })
    for (const [name, model] of [['openai-compatible', compatible(QWEN)], ['openai (Responses)', openai(QWEN)]] as const) {
      const errors: unknown[] = []
      const result = streamObject({ model, schema: Verdict, prompt: 'Is Rome warm?', temperature: 0, maxOutputTokens: 80, maxRetries: 0, onError: ({ error }) => void errors.push(error) })
      let partials = 0
      for await (const partial of result.partialObjectStream) if (partial) partials++
      const object = await result.object
      t.same(errors, [], `${name}: no error`)
      t.ok(partials > 1, `${name}: the object grew in ${partials} steps`)
      t.ok(Verdict.safeParse(object).success, `${name}: ${JSON.stringify(object)}`)
    }
  })

  t.test('generateObject through @ai-sdk/openai: the Responses API (text.format) and the chat model', async (t) => {
    const rec = recordingFetch()
    const openai = createOpenAI({ baseURL, apiKey: 'unused', fetch: rec.fetch })
    const viaResponses = await generateObject({ model: openai(QWEN), schema: Verdict, prompt: 'Is Rome warm?', temperature: 0, maxOutputTokens: 80, maxRetries: 0 })
    t.ok(Verdict.safeParse(viaResponses.object).success, `responses: ${JSON.stringify(viaResponses.object)}`)
    t.match(rec.sent[0]!.url, /\/responses$/, 'the default model speaks /v1/responses')
    const viaChat = await generateObject({ model: openai.chat(QWEN), schema: Verdict, prompt: 'Is Rome warm?', temperature: 0, maxOutputTokens: 80, maxRetries: 0 })
    t.ok(Verdict.safeParse(viaChat.object).success, `chat: ${JSON.stringify(viaChat.object)}`)
    t.match(rec.sent[1]!.url, /\/chat\/completions$/)
  })

  t.test('streamText with a forced tool: the call and result parts arrive, with valid input', async (t) => {
    const provider = createOpenAICompatible({ name: 'hearth', baseURL })
    const calls: { city: string }[] = []
    const result = streamText({
      model: provider(QWEN),
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weatherTool(calls) },
      toolChoice: { type: 'tool', toolName: 'get_weather' },
      // the provider has no option for it but passes its own providerOptions into the body: one call, not a
      // stream of parallel ones up to the token limit
      providerOptions: { hearth: { parallel_tool_calls: false } },
      temperature: 0,
      maxOutputTokens: 120,
      maxRetries: 0,
    })
    const types: string[] = []
    let input: unknown
    let output: unknown
    for await (const part of result.fullStream) {
      types.push(part.type)
      if (part.type === 'tool-call') input = part.input
      if (part.type === 'tool-result') output = part.output
      if (part.type === 'error') t.fail(String(part.error))
    }
    t.ok(types.includes('tool-input-start') && types.includes('tool-input-delta'), 'the arguments stream in')
    t.ok(types.indexOf('tool-call') < types.indexOf('tool-result'), `a call, then its result: ${types.join(' ')}`)
    t.ok(WeatherArgs.safeParse(input).success, `valid input: ${JSON.stringify(input)}`)
    t.same(calls, [input], 'the tool ran once on that input')
    t.match(output, /18 degrees and sunny in (Paris|Rome)/)
    t.equal(await result.finishReason, 'tool-calls')
  })

  t.test('a two-step agent loop through @ai-sdk/openai (Responses): the call, its result, a final text', async (t) => {
    // the first step is forced through prepareStep; the second is left to the model, whose random weights answer
    // in text until the token limit (the Responses API has no stop sequences)
    const rec = recordingFetch()
    const openai = createOpenAI({ baseURL, apiKey: 'unused', fetch: rec.fetch })
    const calls: { city: string }[] = []
    const result = await generateText({
      model: openai(QWEN),
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weatherTool(calls) },
      prepareStep: ({ stepNumber }) => (stepNumber === 0 ? { toolChoice: { type: 'tool', toolName: 'get_weather' } } : { toolChoice: 'auto' }),
      stopWhen: stepCountIs(2),
      providerOptions: { openai: { parallelToolCalls: false } },
      temperature: 0,
      maxOutputTokens: 60,
      maxRetries: 0,
    })
    t.equal(result.steps.length, 2)
    t.equal(calls.length, 1, 'the tool ran once')
    t.ok(WeatherArgs.safeParse(calls[0]).success)
    t.equal(result.steps[0]!.finishReason, 'tool-calls')
    t.same(result.steps[1]!.toolCalls, [], 'the second step calls nothing')
    t.ok(result.text.length > 0, `a final text: ${JSON.stringify(result.text)}`)
    const second = rec.sent[1]!.body as { input: { type?: string }[] }
    t.ok(second.input.some((i) => i.type === 'function_call_output'), 'the result goes back as function_call_output')
  })

  t.test('streamText through @ai-sdk/openai (Responses events) with a forced tool', async (t) => {
    const openai = createOpenAI({ baseURL, apiKey: 'unused' })
    const calls: { city: string }[] = []
    const result = streamText({
      model: openai(QWEN),
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weatherTool(calls) },
      toolChoice: { type: 'tool', toolName: 'get_weather' },
      providerOptions: { openai: { parallelToolCalls: false } },
      temperature: 0,
      maxOutputTokens: 120,
      maxRetries: 0,
    })
    const types = new Set<string>()
    for await (const part of result.fullStream) {
      types.add(part.type)
      if (part.type === 'error') t.fail(String(part.error))
    }
    t.ok(types.has('tool-input-delta') && types.has('tool-call') && types.has('tool-result'), [...types].join(' '))
    t.equal(calls.length, 1)
    t.ok(WeatherArgs.safeParse(calls[0]).success, JSON.stringify(calls[0]))
    t.equal(await result.finishReason, 'tool-calls')
  })

  t.test("@ai-sdk/openai's next turn refers to the stored assistant message (item_reference), or sends it whole with store false", async (t) => {
    for (const store of [true, false]) {
      const rec = recordingFetch()
      const openai = createOpenAI({ baseURL, apiKey: 'unused', fetch: rec.fetch })
      const options = { model: openai(QWEN), temperature: 0, maxOutputTokens: 8, maxRetries: 0, providerOptions: { openai: { store } } }
      const first = await generateText({ ...options, prompt: 'Tell me about Paris.' })
      const again = await generateText({ ...options, messages: [{ role: 'user', content: 'Tell me about Paris.' }, ...first.response.messages, { role: 'user', content: 'And Rome?' }] })
      const input = rec.sent[1]!.body.input as { type?: string; role?: string; id?: string }[]
      const assistant = input[1]!
      if (store) t.same(assistant, { type: 'item_reference', id: (first.response.body as { output: { id: string }[] }).output[0]!.id }, 'a reference to the stored item')
      else t.equal(assistant.role, 'assistant', 'the message itself')
      t.ok(again.text.length > 0, `store ${store}: answered (${JSON.stringify(again.text)})`)
      t.ok(again.usage.inputTokens! > first.usage.inputTokens! + first.usage.outputTokens!, 'with the earlier answer in the prompt')
    }
  })
})

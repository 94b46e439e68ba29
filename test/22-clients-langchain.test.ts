// LangChain JS against the real server: ChatOpenAI pointed at hearth (configuration.baseURL), its
// withStructuredOutput with a zod schema (json_schema by default, and through a forced function call), and
// bindTools with a forced tool whose call comes back parsed in the AIMessage's tool_calls, then its result
// sent back as a ToolMessage for a final answer; also the Responses API (useResponsesApi).
import { HumanMessage, ToolMessage, type AIMessage, type AIMessageChunk } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { ChatOpenAI } from '@langchain/openai'
import t from 'tap'
import { ensureTestModel } from './models/make-test-models.js'
import { PLAIN_TURN_STOPS, recordingFetch, Verdict, WeatherArgs } from './client-helpers.js'
import { startTestServer } from './server-helpers.js'

const QWEN = 'qwen2.5'

const getWeather = tool(async ({ city }) => `18 degrees and sunny in ${city}`, { name: 'get_weather', description: 'The weather in a city', schema: WeatherArgs })

t.test('LangChain JS on a templated model (qwen2.5)', async (t) => {
  const { baseURL } = await startTestServer(t, ['--model', await ensureTestModel('qwen2.5.gguf'), '--ctx', '2048', '--parallel', '2'])
  const chat = (rec = recordingFetch(), extra: Partial<ConstructorParameters<typeof ChatOpenAI>[0]> = {}) =>
    new ChatOpenAI({ model: QWEN, apiKey: 'unused', temperature: 0, maxTokens: 80, maxRetries: 0, configuration: { baseURL, fetch: rec.fetch }, ...extra })

  t.test('withStructuredOutput(zod): json_schema by default, and as a forced function call', async (t) => {
    const rec = recordingFetch()
    const model = chat(rec)
    const viaSchema = await model.withStructuredOutput(Verdict, { name: 'verdict' }).invoke('Is Rome warm?')
    t.ok(Verdict.safeParse(viaSchema).success, `json_schema: ${JSON.stringify(viaSchema)}`)
    t.equal((rec.sent[0]!.body.response_format as { type: string }).type, 'json_schema')
    const viaCall = await model.withStructuredOutput(Verdict, { name: 'verdict', method: 'functionCalling' }).invoke('Is Rome warm?')
    t.ok(Verdict.safeParse(viaCall).success, `function call: ${JSON.stringify(viaCall)}`)
    t.same(rec.sent[1]!.body.tool_choice, { type: 'function', function: { name: 'verdict' } }, 'the call is forced by name')
  })

  t.test('bindTools with a forced tool: tool_calls parsed, the result goes back, a final answer follows', async (t) => {
    const rec = recordingFetch()
    const forced = chat(rec).bindTools([getWeather], { tool_choice: 'get_weather', parallel_tool_calls: false })
    const question = new HumanMessage('What is the weather in Paris?')
    const ai = (await forced.invoke([question])) as AIMessage
    t.equal(ai.tool_calls?.length, 1, 'one call')
    const call = ai.tool_calls![0]!
    t.equal(call.name, 'get_weather')
    t.ok(WeatherArgs.safeParse(call.args).success, `parsed arguments of the schema: ${JSON.stringify(call.args)}`)
    t.ok(call.id, 'with its id')
    t.same(ai.invalid_tool_calls ?? [], [])
    const result = (await getWeather.invoke(call)) as ToolMessage
    t.equal(result.tool_call_id, call.id)
    // the next turn leaves the choice to the model; random weights answer in text, ended by the plain-turn stops
    const free = chat(rec).bindTools([getWeather]).withConfig({ stop: PLAIN_TURN_STOPS })
    const final = (await free.invoke([question, ai, result])) as AIMessage
    t.same(final.tool_calls ?? [], [], 'the final message calls nothing')
    t.equal(final.response_metadata.finish_reason, 'stop')
    t.ok(typeof final.content === 'string' && final.content.length > 0, `a final answer: ${JSON.stringify(final.content)}`)
    const messages = rec.sent[1]!.body.messages as { role: string; tool_call_id?: string }[]
    t.same(messages.map((m) => m.role), ['user', 'assistant', 'tool'])
    t.equal(messages[2]!.tool_call_id, call.id)
  })

  t.test('bindTools streamed: the tool call chunks add up to the same parsed call', async (t) => {
    const forced = chat().bindTools([getWeather], { tool_choice: 'get_weather', parallel_tool_calls: false })
    let merged: AIMessageChunk | undefined
    for await (const chunk of await forced.stream('What is the weather in Paris?')) merged = merged ? merged.concat(chunk) : chunk
    t.equal(merged?.tool_calls?.length, 1)
    t.equal(merged!.tool_calls![0]!.name, 'get_weather')
    t.ok(WeatherArgs.safeParse(merged!.tool_calls![0]!.args).success, JSON.stringify(merged!.tool_calls![0]!.args))
  })

  t.test('the Responses API (useResponsesApi): a forced tool call and structured output', async (t) => {
    const rec = recordingFetch()
    const model = chat(rec, { useResponsesApi: true })
    const ai = (await model.bindTools([getWeather], { tool_choice: 'get_weather', parallel_tool_calls: false }).invoke('What is the weather in Paris?')) as AIMessage
    t.match(rec.sent[0]!.url, /\/responses$/)
    t.equal(ai.tool_calls?.length, 1)
    t.ok(WeatherArgs.safeParse(ai.tool_calls![0]!.args).success, JSON.stringify(ai.tool_calls![0]!.args))
    const verdict = await model.withStructuredOutput(Verdict, { name: 'verdict' }).invoke('Is Rome warm?')
    t.ok(Verdict.safeParse(verdict).success, JSON.stringify(verdict))
  })
})

// A thinking model's reasoning through the agent clients (Qwen3): the AI SDK's providers show it as reasoning
// parts (openai-compatible from reasoning_content; the OpenAI provider from Responses reasoning summaries, which
// hearth fills with the reasoning when `reasoning.summary` is asked for), LangChain keeps it in
// additional_kwargs, and the next turn goes back without an error. Random weights never think of their own
// accord: a grammar (hearth's `grammar` field, added to each request body) makes the model think, then answer.
import { createOpenAI } from '@ai-sdk/openai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import { generateText, streamText } from 'ai'
import t from 'tap'
import { ensureTestModel } from './models/make-test-models.js'
import { recordingFetch } from './client-helpers.js'
import { post, startTestServer } from './server-helpers.js'

const QWEN3 = 'qwen3'
const THINK_THEN_ANSWER = 'root ::= "<think>" [a-z ]{8,40} "</think>" [a-z ]{4,20}'
const withGrammar = () => recordingFetch((body) => ({ ...body, grammar: THINK_THEN_ANSWER }))

t.test('reasoning through the clients on qwen3', async (t) => {
  const { baseURL } = await startTestServer(t, ['--model', await ensureTestModel('qwen3.gguf'), '--ctx', '2048', '--parallel', '2'])

  t.test('AI SDK, openai-compatible: reasoning parts from reasoning_content, streamed and not', async (t) => {
    const rec = withGrammar()
    const model = createOpenAICompatible({ name: 'hearth', baseURL, fetch: rec.fetch })(QWEN3)
    const options = { model, prompt: 'Think about Rome.', temperature: 0, maxOutputTokens: 80, maxRetries: 0 }
    const r = await generateText(options)
    t.match(r.reasoningText, /^[a-z ]{8,40}$/, `the thinking: ${JSON.stringify(r.reasoningText)}`)
    t.match(r.text, /^[a-z ]{4,20}$/, 'the answer apart from it')
    const s = streamText(options)
    const types = new Set<string>()
    for await (const part of s.fullStream) types.add(part.type)
    t.ok(types.has('reasoning-delta') && types.has('text-delta'), [...types].join(' '))
    t.equal(await s.reasoningText, r.reasoningText, 'streamed: the same reasoning')
    const next = await generateText({ ...options, prompt: undefined, messages: [{ role: 'user', content: 'Think about Rome.' }, ...r.response.messages, { role: 'user', content: 'And Paris?' }] })
    t.ok(next.text, 'the next turn, with the reasoning sent back as reasoning_content')
  })

  t.test("AI SDK, OpenAI provider (Responses): reasoning parts from the summaries hearth fills when asked", async (t) => {
    const rec = withGrammar()
    const model = createOpenAI({ baseURL, apiKey: 'unused', fetch: rec.fetch })(QWEN3)
    // the provider sends `reasoning` only for models it knows to reason: forceReasoning says this one does
    const options = { model, prompt: 'Think about Rome.', maxOutputTokens: 80, maxRetries: 0, providerOptions: { openai: { forceReasoning: true, reasoningSummary: 'auto' } } }
    const r = await generateText(options)
    t.same(rec.sent[0]!.body.reasoning, { summary: 'auto' })
    t.match(r.reasoningText, /^[a-z ]{8,40}$/, `the thinking: ${JSON.stringify(r.reasoningText)}`)
    t.match(r.text, /^[a-z ]{4,20}$/)
    const s = streamText(options)
    const types = new Set<string>()
    for await (const part of s.fullStream) types.add(part.type)
    t.ok(types.has('reasoning-delta') && types.has('text-delta'), [...types].join(' '))
    t.match(await s.reasoningText, /^[a-z ]{8,40}$/, 'streamed through reasoning_summary_text events')
    for (const store of [true, false]) {
      const turn = { ...options, providerOptions: { openai: { ...options.providerOptions.openai, store } } }
      const first = await generateText({ ...turn, prompt: 'Think about Rome.' })
      const next = await generateText({ ...turn, prompt: undefined, messages: [{ role: 'user', content: 'Think about Rome.' }, ...first.response.messages, { role: 'user', content: 'And Paris?' }] })
      const sent = rec.sent.at(-1)!.body.input as { type?: string }[]
      // with store false the provider sends reasoning back only with OpenAI's encrypted_content, which hearth does
      // not make (`include` is ignored): it drops the item, as the templates drop earlier turns' reasoning anyway
      if (store) t.equal(sent.filter((i) => i.type === 'item_reference').length, 2, 'store true: the reasoning and the message go back by reference')
      else t.notOk(sent.some((i) => i.type === 'reasoning'), 'store false: the reasoning stays behind')
      t.ok(next.text, `store ${store}: the next turn answers`)
    }
  })

  t.test('reasoning.summary on the wire: a summary part with the reasoning, its events, and a refused level', async (t) => {
    const ask = { model: QWEN3, input: 'Think about Rome.', temperature: 0, max_output_tokens: 80, grammar: THINK_THEN_ANSWER }
    const plain = await post(`${baseURL}/responses`, ask)
    t.same(plain.json.output[0].summary, [], 'no summary unless asked')
    const asked = await post(`${baseURL}/responses`, { ...ask, reasoning: { summary: 'detailed' } })
    const item = asked.json.output[0]
    t.same(item.summary, [{ type: 'summary_text', text: item.content[0].text }])
    t.equal(asked.json.reasoning.summary, 'detailed', 'echoed')
    const bad = await post(`${baseURL}/responses`, { ...ask, reasoning: { summary: 'brief' } })
    t.equal(bad.status, 400)
    t.equal(bad.json.error.param, 'reasoning.summary')
  })

  t.test('LangChain: the reasoning in additional_kwargs, and the next turn', async (t) => {
    const rec = withGrammar()
    const model = new ChatOpenAI({ model: QWEN3, apiKey: 'unused', temperature: 0, maxTokens: 80, maxRetries: 0, configuration: { baseURL, fetch: rec.fetch } })
    const ai = await model.invoke('Think about Rome.')
    t.match(ai.additional_kwargs.reasoning_content, /^[a-z ]{8,40}$/)
    t.match(ai.content, /^[a-z ]{4,20}$/)
    const next = await model.invoke(['Think about Rome.', ai, 'And Paris?'])
    t.ok(next.content, 'the next turn answers')
  })
})

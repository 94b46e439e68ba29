// /v1/responses through the official client, including responses.stream().finalResponse() and
// stateful follow-ups with previous_response_id.
import t from 'tap'
import { Model } from '../lib/index.js'
import { failure, post, sseEvents, startTestServer } from './server-helpers.js'
import { testModelOptions } from './helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'

t.test('responses', async (t) => {
  const { client, baseURL } = await startTestServer(t)
  const local = await Model.load(undefined, { ...testModelOptions, parallel: 1 })
  t.teardown(() => local.dispose())

  t.test('non-streaming', async (t) => {
    const r = await client.responses.create({ model: MODEL, input: 'Tell me of Emma.', max_output_tokens: 16, temperature: 0 })
    t.match(r.id, /^resp_/)
    t.equal(r.object, 'response')
    t.equal(r.status, 'incomplete', 'max_output_tokens reached')
    t.same(r.incomplete_details, { reason: 'max_output_tokens' })
    t.equal(r.output.length, 1)
    const msg = r.output[0]!
    t.equal(msg.type, 'message')
    if (msg.type !== 'message') return
    t.match(msg.id, /^msg_/)
    t.equal(msg.role, 'assistant')
    t.equal(msg.content[0]!.type, 'output_text')
    t.ok(r.output_text.length > 0, 'the client computes output_text')
    t.equal(r.usage!.output_tokens, 16)
    t.equal(r.usage!.total_tokens, r.usage!.input_tokens + 16)
    const expected = (await local.chatPrompt([{ role: 'user', content: 'Tell me of Emma.' }])).length
    t.equal(r.usage!.input_tokens, expected, 'the prompt is the templated input')
    const stored = await client.responses.retrieve(r.id)
    t.equal(stored.id, r.id, 'stored responses can be retrieved')
  })

  t.test('instructions and message items', async (t) => {
    const r = await client.responses.create({
      model: MODEL,
      instructions: 'Answer as Mr. Collins would.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'Good morning.' }] },
        { role: 'assistant', content: 'Good morning to you.' },
        { type: 'message', role: 'user', content: 'How is Lady Catherine?' },
      ],
      max_output_tokens: 8,
      temperature: 0,
    })
    const expected = (
      await local.chatPrompt([
        { role: 'system', content: 'Answer as Mr. Collins would.' },
        { role: 'user', content: 'Good morning.' },
        { role: 'assistant', content: 'Good morning to you.' },
        { role: 'user', content: 'How is Lady Catherine?' },
      ])
    ).length
    t.equal(r.usage!.input_tokens, expected)
    t.equal(r.instructions, 'Answer as Mr. Collins would.')
  })

  t.test('previous_response_id continues the conversation', async (t) => {
    const first = await client.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Who is Mr. Darcy?', max_output_tokens: 12, temperature: 0 })
    const second = await client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'And Elizabeth?', max_output_tokens: 12, temperature: 0 })
    const conversation = await local.chatPrompt([
      { role: 'user', content: 'Who is Mr. Darcy?' },
      { role: 'assistant', content: first.output_text },
      { role: 'user', content: 'And Elizabeth?' },
    ])
    t.equal(second.usage!.input_tokens, conversation.length, 'the second prompt holds the first exchange (instructions are not carried over)')
    t.equal(second.previous_response_id, first.id)
    t.ok(second.usage!.input_tokens_details.cached_tokens > 0, 'the follow-up reuses the cached prefix')
    const third = await client.responses.create({ model: MODEL, previous_response_id: second.id, input: 'Thank you.', max_output_tokens: 4, temperature: 0 })
    t.ok(third.usage!.input_tokens > second.usage!.input_tokens + second.usage!.output_tokens, 'the chain grows')
    t.match(await failure(client.responses.create({ model: MODEL, previous_response_id: 'resp_missing', input: 'x' })), {
      status: 404,
      code: 'previous_response_not_found',
      param: 'previous_response_id',
    })
    const unstored = await client.responses.create({ model: MODEL, input: 'Hello', max_output_tokens: 2, store: false })
    t.match(await failure(client.responses.retrieve(unstored.id)), { status: 404 }, 'store: false keeps nothing')
    const streamedMissing = await post(`${baseURL}/responses`, { model: MODEL, input: 'x', stream: true, previous_response_id: 'resp_nope' })
    t.equal(streamedMissing.status, 404, 'a streamed request with a missing id is a 404 too')
    const del = await fetch(`${baseURL}/responses/${first.id}`, { method: 'DELETE' })
    t.same(await del.json(), { id: first.id, object: 'response.deleted', deleted: true })
  })

  t.test('streaming: the full event sequence', async (t) => {
    const r = await post(`${baseURL}/responses`, { model: MODEL, input: 'Tell me of Emma.', max_output_tokens: 6, temperature: 0, stream: true })
    t.equal(r.status, 200)
    const events = sseEvents(r.text)
    const types = events.map((e) => e.event)
    const data = events.map((e) => JSON.parse(e.data))
    t.same(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'])
    t.same(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete'])
    t.ok(types.slice(4, -4).every((x) => x === 'response.output_text.delta'), 'deltas in between')
    t.same(data.map((d) => d.sequence_number), data.map((_, i) => i), 'sequence_number counts from 0')
    t.ok(data.every((d, i) => d.type === types[i]), 'type repeats the event name')
    const itemId = data[2].item.id
    t.ok(data.slice(3, -2).every((d) => d.item_id === itemId && d.output_index === 0 && d.content_index === 0), 'item ids and indexes agree')
    t.equal(data.at(-2).item.id, itemId)
    t.equal(data.at(-2).item.status, 'incomplete')
    const text = data.filter((d) => d.type === 'response.output_text.delta').map((d) => d.delta).join('')
    t.equal(data.at(-4).text, text)
    t.equal(data.at(-1).response.output[0].content[0].text, text)
    t.notOk(r.text.includes('[DONE]'), 'no [DONE] in the Responses API')
  })

  t.test('the strict responses.stream helper accepts the stream', async (t) => {
    const stream = client.responses.stream({ model: MODEL, input: 'Tell me of Emma.', max_output_tokens: 20, temperature: 0 })
    let deltas = ''
    stream.on('response.output_text.delta', (e) => (deltas += e.delta))
    const final = await stream.finalResponse()
    t.equal(final.output_text, deltas)
    t.equal(final.usage!.output_tokens, 20)
    const plain = await client.responses.create({ model: MODEL, input: 'Tell me of Emma.', max_output_tokens: 20, temperature: 0 })
    t.equal(final.output_text, plain.output_text, 'streamed and plain agree')
    const iter = await client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 3, stream: true })
    const seen: string[] = []
    for await (const e of iter) seen.push(e.type)
    t.equal(seen[0], 'response.created')
  })

  t.test('truncation "auto" drops the oldest turns until the input fits; "disabled" is a 400', async (t) => {
    const long = 'It is a truth universally acknowledged that a single man in possession of a good fortune must be in want of a wife. '
    const input = [
      { role: 'user' as const, content: long.repeat(3) },
      { role: 'assistant' as const, content: long.repeat(2) },
      { role: 'user' as const, content: 'Who is Emma?' },
    ]
    const refused = await post(`${baseURL}/responses`, { model: MODEL, input, max_output_tokens: 4 })
    t.equal(refused.status, 400)
    t.match(refused.json.error, { code: 'context_length_exceeded', param: 'input' })
    const r = await client.responses.create({ model: MODEL, input, max_output_tokens: 4, temperature: 0, truncation: 'auto' })
    t.equal(r.status, 'incomplete')
    t.equal(r.truncation, 'auto')
    const alone = await client.responses.create({ model: MODEL, input: [input[2]!], max_output_tokens: 4, temperature: 0 })
    t.ok(r.usage!.input_tokens < 256, `the input fits the context (${r.usage!.input_tokens} tokens)`)
    t.ok(r.usage!.input_tokens >= alone.usage!.input_tokens, 'the last turn is kept')
  })
})

// Remote MCP tools in /v1/responses against a real MCP server (the official SDK, in this process, on 127.0.0.1),
// with a templated test model whose first turn is forced to call the MCP tool (random weights never call tools
// on their own): the list, the call, its output fed back, the final text; streamed and not; approvals; the old
// SSE transport; the outbound policy; failures that end cleanly.
import type { AddressInfo } from 'node:net'
import { createServer as createNetServer } from 'node:net'
import t, { type Test } from 'tap'
import { ensureTestModel } from './models/make-test-models.js'
import { startMcpTestServer } from './mcp-test-server.js'
import { failure, post, sseEvents, startTestServer } from './server-helpers.js'

type Item = Record<string, any>

const mcp = await startMcpTestServer()
t.teardown(() => mcp.close())

const tool = (extra: Item = {}) => ({ type: 'mcp' as const, server_label: 'test', server_url: `${mcp.url}/mcp`, ...extra })
const force = (name: string) => ({ type: 'mcp' as const, server_label: 'test', name })

t.test('off by default: an mcp tool is a 400 that names --allow-mcp', async (t) => {
  const { baseURL } = await startTestServer(t)
  const r = await post(`${baseURL}/responses`, { input: 'hi', tools: [tool()] })
  t.equal(r.status, 400)
  t.equal(r.json.error.code, 'mcp_not_enabled')
  t.equal(r.json.error.param, 'tools[0].type')
  t.match(r.json.error.message, /--allow-mcp/)
  t.equal(mcp.headers.length, 0, 'nothing was sent to the MCP server')
})

t.test('max_tool_calls below 1 is a 400, with or without MCP tools', async (t) => {
  const { baseURL } = await startTestServer(t)
  const r = await post(`${baseURL}/responses`, { input: 'hi', max_tool_calls: 0 })
  t.equal(r.status, 400)
  t.equal(r.json.error.param, 'max_tool_calls')
})

t.test('the outbound policy: a private address, and a host outside --fetch-allow, are refused', async (t) => {
  const open = await startTestServer(t, ['--allow-mcp'])
  let r = await post(`${open.baseURL}/responses`, { input: 'hi', tools: [tool({ require_approval: 'never' })] })
  t.equal(r.status, 400)
  t.equal(r.json.error.code, 'fetch_not_allowed')
  t.equal(r.json.error.param, 'tools[0].server_url')
  const listed = await startTestServer(t, ['--allow-mcp', '--fetch-allow', '10.9.8.7'])
  r = await post(`${listed.baseURL}/responses`, { input: 'hi', tools: [tool({ require_approval: 'never' })] })
  t.equal(r.status, 400)
  t.equal(r.json.error.code, 'fetch_not_allowed')
  t.equal(mcp.headers.length, 0, 'nothing reached the MCP server')
})

const model = await ensureTestModel('qwen2.5.gguf')
const { client, baseURL } = await startTestServer(t, ['--model', model, '--ctx', '2048', '--parallel', '2', '--allow-mcp', '--fetch-allow', '127.0.0.1', '--mcp-timeout', '2', '--mcp-max-tools', '2'])
const base = { model: 'qwen2.5', input: 'Say alpha through the echo tool.', temperature: 0, max_output_tokens: 200, parallel_tool_calls: false }

function checkLoop(t: Test, output: Item[], name: string) {
  t.equal(output[0]!.type, 'mcp_list_tools')
  t.equal(output[0]!.server_label, 'test')
  t.equal(output[1]!.type, 'mcp_call')
  t.equal(output[1]!.name, name)
  t.equal(output[1]!.server_label, 'test')
  t.match(JSON.parse(output[1]!.arguments), { word: /^(alpha|beta)$/ })
  t.equal(output.at(-1)!.type, 'message', 'the model answers in text after the call')
}

t.test('list, call, output fed back, final text; headers reach the server; allowed_tools filters', async (t) => {
  const before = mcp.calls.length
  const r = await client.responses.create({
    ...base,
    tools: [tool({ require_approval: 'never', allowed_tools: ['echo', 'fail'], headers: { 'X-Hearth-Test': 'secret-1' } })],
    tool_choice: force('echo'),
  })
  const output = r.output as Item[]
  checkLoop(t, output, 'echo')
  t.same(output[0]!.tools.map((x: Item) => x.name), ['echo', 'fail'], 'allowed_tools filters the list')
  t.match(output[0]!.tools[0], { name: 'echo', description: 'Echoes a word', input_schema: { type: 'object', properties: { word: { enum: ['alpha', 'beta'] } } } })
  const word = JSON.parse(output[1]!.arguments).word
  t.equal(output[1]!.output, `echo:${word}`)
  t.equal(output[1]!.error, null)
  t.equal(output[1]!.status, 'completed')
  t.same(mcp.calls.slice(before), [{ name: 'echo', args: { word } }], 'the server ran the call once')
  t.ok(mcp.headers.some((h) => h['x-hearth-test'] === 'secret-1'), 'the header reached the MCP server')
  t.equal((r.tools[0] as Item).headers['X-Hearth-Test'], '<redacted>', 'header values are not echoed')
  t.match(r.status, /^(completed|incomplete)$/, 'random weights may use up max_output_tokens')
})

t.test('streamed: the events in OpenAI names and order, sequence numbers unbroken, the same output', async (t) => {
  const stream = client.responses.stream({ ...base, tools: [tool({ require_approval: 'never', allowed_tools: { tool_names: ['echo'] } })], tool_choice: force('echo') })
  const events: Item[] = []
  for await (const e of stream) events.push(e as Item)
  const final = await stream.finalResponse()
  t.same(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence numbers from 0, unbroken')
  const types = events.map((e) => e.type as string).filter((x) => x.includes('mcp') || x.startsWith('response.output_item') || x === 'response.completed' || x === 'response.incomplete' || x === 'response.created')
  const at = (x: string) => types.indexOf(x)
  t.equal(types[0], 'response.created')
  for (const x of ['response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed', 'response.mcp_call.in_progress', 'response.mcp_call_arguments.done', 'response.mcp_call.completed']) t.ok(at(x) > 0, x)
  t.ok(at('response.mcp_list_tools.in_progress') < at('response.mcp_list_tools.completed'))
  t.ok(at('response.mcp_list_tools.completed') < at('response.mcp_call.in_progress'))
  t.ok(at('response.mcp_call.in_progress') < at('response.mcp_call_arguments.done'))
  t.ok(at('response.mcp_call_arguments.done') < at('response.mcp_call.completed'))
  t.equal(types.at(-1), final.status === 'completed' ? 'response.completed' : 'response.incomplete')
  const deltas = events.filter((e) => e.type === 'response.mcp_call_arguments.delta').map((e) => e.delta).join('')
  const output = final.output as Item[]
  checkLoop(t, output, 'echo')
  t.same(output[0]!.tools.map((x: Item) => x.name), ['echo'])
  t.equal(deltas, output[1]!.arguments, 'the argument deltas make the arguments')
  const done = events.filter((e) => e.type === 'response.output_item.done').map((e) => e.item.type)
  t.same(done, output.map((i) => i.type), 'every item is done once, in order')
})

t.test('a failing tool: the mcp_call has the error, the model still answers', async (t) => {
  const r = await client.responses.create({ ...base, tools: [tool({ require_approval: 'never', allowed_tools: ['echo', 'fail'] })], tool_choice: force('fail') })
  const output = r.output as Item[]
  checkLoop(t, output, 'fail')
  t.equal(output[1]!.error, 'the tool failed on purpose')
  t.equal(output[1]!.status, 'failed')
  t.equal(output[1]!.output, null)
})

t.test('approval: required by default, and with "always"; an mcp_approval_response continues', async (t) => {
  for (const extra of [{}, { require_approval: 'always' }]) {
    const before = mcp.calls.length
    const first = await client.responses.create({ ...base, tools: [tool({ allowed_tools: ['echo'], ...extra })], tool_choice: force('echo') })
    const out = first.output as Item[]
    t.same(out.map((i) => i.type), ['mcp_list_tools', 'mcp_approval_request'], 'the response ends with the approval request')
    const req = out[1]!
    t.equal(req.name, 'echo')
    t.equal(req.server_label, 'test')
    t.equal(mcp.calls.length, before, 'nothing ran yet')
    const second = await client.responses.create({
      ...base,
      previous_response_id: first.id,
      input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }],
      tools: [tool({ allowed_tools: ['echo'], ...extra })],
    })
    const out2 = second.output as Item[]
    t.equal(out2[0]!.type, 'mcp_call', 'the list already in the conversation is not shown again')
    const call = out2.find((i) => i.type === 'mcp_call')!
    t.ok(call, 'the approved call ran')
    t.equal(call.approval_request_id, req.id)
    t.equal(call.arguments, req.arguments)
    t.equal(call.output, `echo:${JSON.parse(req.arguments).word}`)
    t.equal(out2.at(-1)!.type, 'message')
    t.equal(mcp.calls.length, before + 1)
  }
  const stream = client.responses.stream({ ...base, tools: [tool({ allowed_tools: ['echo'] })], tool_choice: force('echo') })
  const events: Item[] = []
  for await (const e of stream) events.push(e as Item)
  const final = await stream.finalResponse()
  t.same(events.map((e) => e.sequence_number), events.map((_, i) => i), 'streamed: sequence numbers unbroken')
  t.same((final.output as Item[]).map((i) => i.type), ['mcp_list_tools', 'mcp_approval_request'])
  const added = events.filter((e) => e.type === 'response.output_item.added').map((e) => e.item.type)
  t.same(added, ['mcp_list_tools', 'mcp_approval_request'], 'streamed: the approval request is an output item')
  t.notOk(events.some((e) => e.type.startsWith('response.mcp_call')), 'no call events before approval')
  const bad = await failure(client.responses.create({ ...base, input: [{ type: 'mcp_approval_response', approval_request_id: 'mcpr_nope', approve: true }], tools: [tool({ allowed_tools: ['echo'] })] }))
  t.equal(bad.status, 400)
  t.equal(bad.code, 'mcp_approval_not_found')
})

t.test('the old HTTP+SSE transport', async (t) => {
  const r = await client.responses.create({ ...base, tools: [tool({ server_url: `${mcp.url}/sse`, require_approval: 'never', allowed_tools: ['echo'] })], tool_choice: force('echo') })
  const output = r.output as Item[]
  checkLoop(t, output, 'echo')
  t.match(output[1]!.output, /^echo:/)
})

t.test('failures end cleanly: an unreachable server (424), a slow tool (the call fails at the time limit), too many tools', async (t) => {
  const down = await failure(client.responses.create({ ...base, tools: [tool({ server_url: 'http://127.0.0.1:1/mcp', require_approval: 'never' })] }))
  t.equal(down.status, 424)
  t.equal(down.code, 'mcp_server_error')
  t.match(down.message, /test/)
  const raw = await post(`${baseURL}/responses`, { ...base, stream: true, tools: [tool({ server_url: 'http://127.0.0.1:1/mcp', require_approval: 'never' })] })
  const types = sseEvents(raw.text).map((e) => JSON.parse(e.data).type)
  t.same(types.slice(-4), ['response.mcp_list_tools.failed', 'response.output_item.done', 'error', 'response.failed'], 'streamed: the list fails, then the response')

  // a server that accepts connections and never answers: the list fails at --mcp-timeout (2 s here), no hang
  const silent = createNetServer((s) => void s.on('error', () => undefined).resume())
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const mute = await failure(client.responses.create({ ...base, tools: [tool({ server_url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`, require_approval: 'never' })] }))
  t.equal(mute.status, 424)
  t.equal(mute.code, 'mcp_server_error')
  t.match(mute.message, /2 s/)
  // resolves only once every connection to it has closed: hearth does not keep one open after the time limit
  await new Promise<void>((r) => silent.close(() => r()))

  const slow = await client.responses.create({ ...base, tools: [tool({ require_approval: 'never', allowed_tools: ['slow'] })], tool_choice: force('slow') })
  const call = (slow.output as Item[])[1]!
  t.equal(call.status, 'failed')
  t.match(call.error, /2 s|time limit/)

  const many = await failure(client.responses.create({ ...base, tools: [tool({ require_approval: 'never' })] }))
  t.equal(many.status, 400)
  t.equal(many.code, 'mcp_too_many_tools')
  t.equal(many.param, 'tools[0].allowed_tools')
})

t.test('max_tool_calls caps the calls of one response; the model then answers in text', async (t) => {
  const before = mcp.calls.length
  const request = (id: string, word: string) => ({ type: 'mcp_approval_request', id, server_label: 'test', name: 'echo', arguments: JSON.stringify({ word }) })
  // max_tool_calls is not in the openai client's types
  const raw = await post(`${baseURL}/responses`, {
    ...base,
    max_tool_calls: 1,
    tools: [tool({ allowed_tools: ['echo'] })],
    input: [
      { role: 'user', content: 'Echo twice.' },
      request('mcpr_a', 'alpha'),
      request('mcpr_b', 'beta'),
      { type: 'mcp_approval_response', approval_request_id: 'mcpr_a', approve: true },
      { type: 'mcp_approval_response', approval_request_id: 'mcpr_b', approve: true },
    ],
  })
  t.equal(raw.status, 200)
  const r = raw.json as { output: Item[] }
  const calls = (r.output as Item[]).filter((i) => i.type === 'mcp_call')
  t.equal(calls.length, 2)
  t.equal(calls[0]!.output, 'echo:alpha')
  t.equal(calls[1]!.status, 'failed')
  t.match(calls[1]!.error, /limit of 1 MCP calls/)
  t.equal(mcp.calls.length, before + 1, 'only one call reached the server')
  t.equal((r.output as Item[]).at(-1)!.type, 'message')
})

t.test('function and MCP tools mixed: a function call ends the response and goes to the client', async (t) => {
  const before = mcp.calls.length
  const fn = { type: 'function' as const, name: 'pick', strict: true, parameters: { type: 'object', properties: { n: { type: 'integer', enum: [1, 2] } }, required: ['n'], additionalProperties: false } }
  const r = await client.responses.create({ ...base, tools: [fn, tool({ require_approval: 'never', allowed_tools: ['echo'] })], tool_choice: { type: 'function', name: 'pick' } })
  t.same((r.output as Item[]).map((i) => i.type), ['mcp_list_tools', 'function_call'])
  t.equal(mcp.calls.length, before, 'no MCP call ran')
})

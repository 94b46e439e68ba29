// The mcp tool entries of a Responses request, without a server: parsing and its 400s, allowed_tools,
// require_approval's forms, the mcp_* input items, and the flags that configure remote MCP.
import t, { type Test } from 'tap'
import { HearthError } from '../lib/errors.js'
import { parseConfig } from '../server/cli.js'
import { allowedTools, mcpInputItems, mcpServers, modelTools, needsApproval, type McpToolInfo } from '../server/mcp-tools.js'

const url = 'http://127.0.0.1:9/mcp'
const tools: McpToolInfo[] = [
  { name: 'read', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
  { name: 'write', inputSchema: { type: 'object' } },
]
const limits = { maxTools: 64 }

function refusal(t: Test, fn: () => unknown, code: string, param: string) {
  try {
    fn()
    t.fail('expected a refusal')
  } catch (err) {
    t.ok(err instanceof HearthError)
    t.equal((err as HearthError).code, code)
    t.equal((err as HearthError).param, param)
  }
}

t.test('mcp entries: off, malformed, and split from function tools', async (t) => {
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's', server_url: url }], false), 'mcp_not_enabled', 'tools[0].type')
  refusal(t, () => mcpServers([{ type: 'mcp', server_url: url }], true), 'invalid_parameter', 'tools[0].server_label')
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's' }], true), 'invalid_parameter', 'tools[0].server_url')
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's', server_url: 'file:///etc/passwd' }], true), 'invalid_parameter', 'tools[0].server_url')
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's', server_url: url, headers: { 'Bad Name': 'x' } }], true), 'invalid_parameter', 'tools[0].headers')
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's', server_url: url, require_approval: 'sometimes' }], true), 'invalid_parameter', 'tools[0].require_approval')
  refusal(t, () => mcpServers([{ type: 'mcp', server_label: 's', server_url: url }, { type: 'mcp', server_label: 's', server_url: url }], true), 'invalid_parameter', 'tools[1].server_label')
  const fn = { type: 'function', name: 'f' }
  const { functions, servers } = mcpServers([fn, { type: 'mcp', server_label: 's', server_url: url, headers: { 'X-Key': 'k' }, authorization: 'tok' }], true)
  t.same(functions, [fn])
  t.equal(servers[0]!.index, 1)
  t.same(servers[0]!.headers, { 'X-Key': 'k', Authorization: 'Bearer tok' })
  t.equal(servers[0]!.approval, 'always', 'approval is required by default, as at OpenAI')
})

t.test('allowed_tools and the tool limit', async (t) => {
  const spec = (allowed: unknown) => mcpServers([{ type: 'mcp', server_label: 's', server_url: url, allowed_tools: allowed }], true).servers[0]!
  t.same(allowedTools(spec(['write']), tools, limits).map((x) => x.name), ['write'])
  t.same(allowedTools(spec({ tool_names: ['read', 'nope'] }), tools, limits).map((x) => x.name), ['read'])
  t.same(allowedTools(spec({ read_only: true }), tools, limits).map((x) => x.name), ['read'])
  t.same(allowedTools(spec(null), tools, limits).map((x) => x.name), ['read', 'write'])
  refusal(t, () => allowedTools(spec(null), tools, { maxTools: 1 }), 'mcp_too_many_tools', 'tools[0].allowed_tools')
  refusal(t, () => modelTools([{ name: 'read' }], [{ spec: spec(null), tools }]), 'invalid_parameter', 'tools[0]')
})

t.test('require_approval: never, always, per-tool filters, --mcp-auto-approve', async (t) => {
  const spec = (rule: unknown) => mcpServers([{ type: 'mcp', server_label: 's', server_url: url, require_approval: rule }], true).servers[0]!
  t.equal(needsApproval(spec('never'), tools[1], false), false)
  t.equal(needsApproval(spec('always'), tools[1], false), true)
  t.equal(needsApproval(spec(undefined), tools[1], true), false, 'auto-approve')
  const filtered = spec({ never: { tool_names: ['read'] } })
  t.equal(needsApproval(filtered, tools[0], false), false)
  t.equal(needsApproval(filtered, tools[1], false), true)
  const readOnly = spec({ never: { read_only: true } })
  t.equal(needsApproval(readOnly, tools[0], false), false)
  t.equal(needsApproval(readOnly, tools[1], false), true)
})

t.test('mcp_* input items', async (t) => {
  const { rest, requests, responses } = mcpInputItems([
    { type: 'message', role: 'user', content: 'hi' },
    { type: 'mcp_list_tools', server_label: 's', tools: [] },
    { type: 'mcp_call', id: 'mcp_1', name: 'read', arguments: '{}', output: 'ok', server_label: 's' },
    { type: 'mcp_approval_request', id: 'mcpr_1', name: 'write', arguments: '{"a":1}', server_label: 's' },
    { type: 'mcp_approval_response', approval_request_id: 'mcpr_1', approve: false },
  ])
  t.same(rest, [
    { type: 'message', role: 'user', content: 'hi' },
    { type: 'function_call', call_id: 'mcp_1', name: 'read', arguments: '{}' },
    { type: 'function_call_output', call_id: 'mcp_1', output: 'ok' },
  ])
  t.same(requests, [{ id: 'mcpr_1', serverLabel: 's', name: 'write', arguments: '{"a":1}' }])
  t.same(responses, [{ requestId: 'mcpr_1', approve: false, where: 'input[4]' }])
  refusal(t, () => mcpInputItems([{ type: 'mcp_approval_response', approval_request_id: 'x' }]), 'invalid_parameter', 'input[0].approve')
})

t.test('flags', async (t) => {
  const off = parseConfig([], {})
  t.equal(off.mcp.enabled, false)
  t.same(off.mcp.fetchAllow, [])
  const on = parseConfig(['--allow-mcp', '--fetch-allow', '127.0.0.1, .example.com', '--mcp-timeout', '2.5', '--max-tool-calls', '3', '--mcp-max-tools', '5', '--mcp-max-result', '1000', '--mcp-auto-approve'], {})
  t.match(on.mcp, { enabled: true, fetchAllow: ['127.0.0.1', '.example.com'], timeoutMs: 2500, maxToolCalls: 3, maxTools: 5, maxResultBytes: 1000, autoApprove: true })
  t.equal(parseConfig([], { HEARTH_ALLOW_MCP: '1', HEARTH_FETCH_ALLOW: '*' }).mcp.enabled, true)
  t.throws(() => parseConfig(['--max-tool-calls', '0'], {}), /--max-tool-calls/)
  t.throws(() => parseConfig(['--fetch-allow', 'http://x/'], {}), /--fetch-allow entry "http:\/\/x\/"/)
})

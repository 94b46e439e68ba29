// The MCP steps of a /v1/responses agent loop, each shown as OpenAI shows it: listing a server's tools (an
// mcp_list_tools item), running a call (an mcp_call item, its output or error), and the approval requests and
// responses that gate calls. responses.ts runs the model turns between them.
import type { ChatMessage } from '../lib/chat-template.js'
import { HearthError, invalidParam } from '../lib/errors.js'
import type { McpClients } from './mcp-client.js'
import { allowedTools, needsApproval, type ApprovalRequest, type ApprovalResponse, type McpServerSpec, type McpServerTools, type McpToolInfo } from './mcp-tools.js'
import { newId } from './ids.js'
import type { CallKind, Item, ResponseOutput } from './response-output.js'
import type { McpConfig } from './state.js'

export class McpSession {
  readonly #clients: McpClients
  readonly #config: McpConfig
  readonly #signal: AbortSignal
  /** label -> the server and the tools the model may call on it */
  readonly #servers = new Map<string, McpServerTools>()
  /** tool name -> its server */
  readonly #byTool = new Map<string, { spec: McpServerSpec; tool: McpToolInfo }>()
  /** calls run in this response (approved ones included), for max_tool_calls */
  calls = 0
  readonly maxCalls: number

  constructor(clients: McpClients, config: McpConfig, signal: AbortSignal, maxToolCalls: number | null | undefined) {
    this.#clients = clients
    this.#config = config
    this.#signal = signal
    this.maxCalls = Math.min(config.maxToolCalls, maxToolCalls ?? Infinity)
  }

  get servers(): McpServerTools[] {
    return [...this.#servers.values()]
  }

  /**
   * Lists every server's tools into mcp_list_tools items. A failure leaves its item with `error` and throws
   * (mcp_server_error, 424; fetch_not_allowed, 400).
   */
  async list(specs: McpServerSpec[], output: ResponseOutput, known: ReadonlySet<string>): Promise<void> {
    for (const spec of specs) {
      // a list already in the conversation is not shown again (as at OpenAI); the tools are still fetched
      if (known.has(spec.serverLabel)) {
        const tools = allowedTools(spec, await this.#clients.listTools(spec, this.#signal), this.#config)
        this.#add(spec, tools)
        continue
      }
      const item: Item = { id: newId('mcpl_'), type: 'mcp_list_tools', server_label: spec.serverLabel, tools: [] }
      const index = output.open(item)
      output.event('response.mcp_list_tools.in_progress', index)
      try {
        const tools = allowedTools(spec, await this.#clients.listTools(spec, this.#signal), this.#config)
        item.tools = tools.map((t) => ({ name: t.name, description: t.description ?? null, input_schema: t.inputSchema, annotations: t.annotations ?? null }))
        this.#add(spec, tools)
      } catch (err) {
        item.error = err instanceof Error ? err.message : String(err)
        output.event('response.mcp_list_tools.failed', index)
        output.done(index)
        throw err
      }
      output.event('response.mcp_list_tools.completed', index)
      output.done(index)
    }
  }

  #add(spec: McpServerSpec, tools: McpToolInfo[]): void {
    this.#servers.set(spec.serverLabel, { spec, tools })
    for (const tool of tools) this.#byTool.set(tool.name, { spec, tool })
  }

  /** How a call of `name` is shown: null for a function tool. */
  readonly kind: CallKind = (name) => {
    const hit = this.#byTool.get(name)
    if (!hit) return null
    return { type: needsApproval(hit.spec, hit.tool, this.#config.autoApprove) ? 'mcp_approval_request' : 'mcp_call', serverLabel: hit.spec.serverLabel }
  }

  /**
   * Runs a call whose mcp_call item is open (arguments complete): its output or error goes into the item, then
   * the completed or failed event and the item's done event. Returns what the model reads as the tool's answer.
   */
  async run(output: ResponseOutput, item: Item, index: number): Promise<string> {
    const name = item.name as string
    const hit = this.#byTool.get(name)
    let result: { output: string } | { error: string }
    if (!hit || hit.spec.serverLabel !== item.server_label) result = { error: `no tool ${JSON.stringify(name)} on MCP server '${String(item.server_label)}'` }
    else if (this.calls >= this.maxCalls) result = { error: `not run: this response reached its limit of ${this.maxCalls} MCP calls (max_tool_calls, --max-tool-calls)` }
    else {
      this.calls++
      const args = parseArguments(item.arguments as string)
      result = typeof args === 'string' ? { error: args } : await this.#clients.callTool(hit.spec, name, args, this.#signal)
      if ('output' in result && Buffer.byteLength(result.output) > this.#config.maxResultBytes) {
        result = { error: `the tool's output is ${Buffer.byteLength(result.output)} bytes, more than the ${this.#config.maxResultBytes} allowed (--mcp-max-result)` }
      }
    }
    if ('output' in result) {
      item.output = result.output
      item.status = 'completed'
      output.event('response.mcp_call.completed', index)
    } else {
      item.error = result.error
      item.status = 'failed'
      output.event('response.mcp_call.failed', index)
    }
    output.done(index)
    return 'output' in result ? result.output : `Error: ${result.error}`
  }

  /**
   * The calls the client approved or declined (mcp_approval_response items), each matched with its request (in
   * `input` or in the previous response's output): approved ones run now as mcp_call items; the conversation
   * gets each call with its answer (a declined one answers that the user declined it).
   */
  async answerApprovals(responses: ApprovalResponse[], requests: ApprovalRequest[], output: ResponseOutput, conversation: ChatMessage[]): Promise<void> {
    for (const r of responses) {
      const req = requests.find((q) => q.id === r.requestId)
      if (!req) throw new HearthError('mcp_approval_not_found', `${r.where}.approval_request_id: no approval request '${r.requestId}' in the input or the previous response`, `${r.where}.approval_request_id`)
      if (!this.#servers.has(req.serverLabel)) {
        throw invalidParam(`${r.where}.approval_request_id`, `${r.where}: approval request '${r.requestId}' is for MCP server '${req.serverLabel}', which is not in tools`)
      }
      let answer = 'The user declined this tool call.'
      if (r.approve) {
        const item: Item = { id: newId('mcp_'), type: 'mcp_call', status: 'in_progress', approval_request_id: req.id, arguments: req.arguments, error: null, name: req.name, output: null, server_label: req.serverLabel }
        const index = output.open(item)
        output.event('response.mcp_call.in_progress', index)
        output.event('response.mcp_call_arguments.done', index, { arguments: req.arguments })
        answer = await this.run(output, item, index)
      }
      conversation.push({ role: 'assistant', content: null, toolCalls: [{ id: req.id, name: req.name, arguments: req.arguments }] }, { role: 'tool', toolCallId: req.id, content: answer })
    }
  }
}

/** The model's arguments as an object, or why not (the call's error). */
function parseArguments(text: string): Record<string, unknown> | string {
  try {
    const v: unknown = JSON.parse(text || '{}')
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>
  } catch {
    // fall through
  }
  return `the model's arguments are not a JSON object: ${text.slice(0, 200)}`
}

/** The approval requests a previous response ended with. */
export function storedApprovalRequests(output: unknown): ApprovalRequest[] {
  if (!Array.isArray(output)) return []
  return output
    .filter((i): i is Item => typeof i === 'object' && i !== null && (i as Item).type === 'mcp_approval_request')
    .map((i) => ({ id: String(i.id), serverLabel: String(i.server_label), name: String(i.name), arguments: String(i.arguments) }))
}

/**
 * The servers whose tools the conversation already shows: an mcp_list_tools item (or a call or approval request,
 * which follows one) in the previous response's output or in the input.
 */
const MCP_ITEMS = new Set(['mcp_list_tools', 'mcp_call', 'mcp_approval_request'])

export function listedLabels(...sources: unknown[]): Set<string> {
  const out = new Set<string>()
  for (const items of sources) {
    if (!Array.isArray(items)) continue
    for (const i of items as Item[]) if (typeof i?.type === 'string' && MCP_ITEMS.has(i.type) && !(i.type === 'mcp_list_tools' && i.error) && typeof i.server_label === 'string') out.add(i.server_label)
  }
  return out
}

/** `tools` as the response echoes and stores it: header values (credentials) are not kept. */
export function echoedTools(tools: Record<string, unknown>[] | null | undefined): Record<string, unknown>[] {
  return (tools ?? []).map((t) => {
    if (t.type !== 'mcp') return t
    const out: Record<string, unknown> = { ...t }
    if (t.headers && typeof t.headers === 'object') out.headers = Object.fromEntries(Object.keys(t.headers).map((k) => [k, '<redacted>']))
    if (typeof t.authorization === 'string') out.authorization = '<redacted>'
    return out
  })
}

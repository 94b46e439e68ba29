// The Responses API's `mcp` tools as a request states them: which servers, which of their tools the model may see
// (allowed_tools), which calls wait for the user's approval (require_approval), and the mcp_* items a client sends
// back in `input` (approval responses, earlier calls and lists). Pure: connecting is mcp-client.ts's business and
// the loop is mcp-loop.ts's.
import type { ChatMessage, Tool } from '../lib/chat-template.js'
import { HearthError, invalidParam } from '../lib/errors.js'
import { checkToolCount } from './chat-messages.js'

type Json = Record<string, unknown>

/** One `{type: "mcp"}` entry of `tools`. */
export interface McpServerSpec {
  /** its position in tools, for error params */
  index: number
  serverLabel: string
  url: URL
  headers: Record<string, string>
  /** null: every tool */
  allowed: { names: string[] | null; readOnly: boolean | null } | null
  approval: ApprovalRule
}

/** require_approval: 'always' | 'never' | per-tool filters ({always: {tool_names}, never: {tool_names}}). */
export type ApprovalRule = 'always' | 'never' | { always: ToolFilter | null; never: ToolFilter | null }

interface ToolFilter {
  names: string[] | null
  readOnly: boolean | null
}

/** A tool as the server lists it. */
export interface McpToolInfo {
  name: string
  description?: string
  inputSchema: Record<string, unknown>
  annotations?: Record<string, unknown>
}

/** What the model may call on one server, after allowed_tools. */
export interface McpServerTools {
  spec: McpServerSpec
  tools: McpToolInfo[]
}

export interface McpLimits {
  /** tools of one server offered to the model (after allowed_tools) */
  maxTools: number
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

function stringList(raw: unknown, where: string): string[] {
  if (!Array.isArray(raw) || raw.some((s) => typeof s !== 'string')) throw invalidParam(where, `${where} must be a list of tool names`)
  return raw as string[]
}

function filter(raw: unknown, where: string): ToolFilter {
  if (Array.isArray(raw)) return { names: stringList(raw, where), readOnly: null }
  if (!isObject(raw)) throw invalidParam(where, `${where} must be a list of tool names or {"tool_names": [...], "read_only": bool}`)
  if (raw.read_only !== undefined && raw.read_only !== null && typeof raw.read_only !== 'boolean') throw invalidParam(`${where}.read_only`, `${where}.read_only must be a boolean`)
  return {
    names: raw.tool_names === undefined || raw.tool_names === null ? null : stringList(raw.tool_names, `${where}.tool_names`),
    readOnly: typeof raw.read_only === 'boolean' ? raw.read_only : null,
  }
}

function matches(f: ToolFilter, tool: McpToolInfo): boolean {
  if (f.names && !f.names.includes(tool.name)) return false
  if (f.readOnly !== null && (tool.annotations?.readOnlyHint === true) !== f.readOnly) return false
  return true
}

/**
 * Splits `tools` into function tools (left for responseTools) and MCP servers. Throws mcp_not_enabled when an mcp
 * tool comes and remote MCP is off, and a 400 naming the field for anything malformed.
 */
export function mcpServers(raw: Json[] | null | undefined, enabled: boolean): { functions: Json[]; servers: McpServerSpec[] } {
  checkToolCount(raw)
  const functions: Json[] = []
  const servers: McpServerSpec[] = []
  ;(raw ?? []).forEach((t, i) => {
    if (t.type !== 'mcp') {
      functions.push(t)
      return
    }
    const where = `tools[${i}]`
    if (!enabled) {
      throw new HearthError('mcp_not_enabled', `${where} has type "mcp": remote MCP tools are off on this server; start it with --allow-mcp (HEARTH_ALLOW_MCP=1) to enable them`, `${where}.type`)
    }
    const label = t.server_label
    if (typeof label !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(label)) {
      throw invalidParam(`${where}.server_label`, `${where}.server_label must be 1 to 64 letters, digits, _ or -`)
    }
    if (servers.some((s) => s.serverLabel === label)) throw invalidParam(`${where}.server_label`, `${where}.server_label ${JSON.stringify(label)} is used twice`)
    if (t.connector_id !== undefined || t.tunnel_id !== undefined) {
      throw new HearthError('unsupported_parameter', `${where}: connectors and tunnels are not supported; give server_url`, `${where}.${t.connector_id !== undefined ? 'connector_id' : 'tunnel_id'}`)
    }
    if (typeof t.server_url !== 'string') throw invalidParam(`${where}.server_url`, `${where}.server_url is required`)
    let url: URL
    try {
      url = new URL(t.server_url)
    } catch {
      throw invalidParam(`${where}.server_url`, `${where}.server_url is not a URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidParam(`${where}.server_url`, `${where}.server_url must be http or https`)
    const headers: Record<string, string> = {}
    if (t.headers !== undefined && t.headers !== null) {
      if (!isObject(t.headers)) throw invalidParam(`${where}.headers`, `${where}.headers must be an object of strings`)
      for (const [k, v] of Object.entries(t.headers)) {
        if (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n\0]/.test(v)) {
          throw invalidParam(`${where}.headers`, `${where}.headers.${k} must be a valid header name with a string value`)
        }
        headers[k] = v
      }
    }
    if (typeof t.authorization === 'string' && t.authorization) headers.Authorization = `Bearer ${t.authorization}`
    const allowed = t.allowed_tools === undefined || t.allowed_tools === null ? null : filter(t.allowed_tools, `${where}.allowed_tools`)
    servers.push({ index: i, serverLabel: label, url, headers, allowed, approval: approvalRule(t.require_approval, `${where}.require_approval`) })
  })
  return { functions, servers }
}

function approvalRule(raw: unknown, where: string): ApprovalRule {
  if (raw === undefined || raw === null || raw === 'always') return 'always'
  if (raw === 'never') return 'never'
  if (!isObject(raw)) throw invalidParam(where, `${where} must be "always", "never" or {"always": {...}, "never": {...}}`)
  const part = (k: 'always' | 'never') => (raw[k] === undefined || raw[k] === null ? null : filter(raw[k], `${where}.${k}`))
  return { always: part('always'), never: part('never') }
}

/** The tools of one server the request allows, at most maxTools (more is a 400: the model's prompt would balloon). */
export function allowedTools(spec: McpServerSpec, listed: McpToolInfo[], limits: McpLimits): McpToolInfo[] {
  const tools = spec.allowed ? listed.filter((t) => matches(spec.allowed!, t)) : listed
  if (tools.length > limits.maxTools) {
    throw new HearthError(
      'mcp_too_many_tools',
      `MCP server '${spec.serverLabel}' offers ${tools.length} tools; at most ${limits.maxTools} may be given to the model (--mcp-max-tools); narrow them with tools[${spec.index}].allowed_tools`,
      `tools[${spec.index}].allowed_tools`,
    )
  }
  return tools
}

/** Whether a call waits for approval; `autoApprove` is --mcp-auto-approve. */
export function needsApproval(spec: McpServerSpec, tool: McpToolInfo | undefined, autoApprove: boolean): boolean {
  if (autoApprove) return false
  const rule = spec.approval
  if (rule === 'always' || rule === 'never') return rule === 'always'
  const t = tool ?? { name: '', inputSchema: {} }
  if (rule.never && matches(rule.never, t)) return false
  if (rule.always && matches(rule.always, t)) return true
  // a filter that names only the exempt tools leaves the others approved by default, as OpenAI's default is
  return true
}

/** The library tools for the model: the MCP tools under their own names; a name given twice is a 400. */
export function modelTools(functions: Tool[], servers: McpServerTools[]): Tool[] {
  const out = [...functions]
  const seen = new Map<string, string>(functions.map((f) => [f.name, 'a function tool']))
  for (const { spec, tools } of servers) {
    for (const t of tools) {
      const other = seen.get(t.name)
      if (other) {
        throw invalidParam(`tools[${spec.index}]`, `MCP server '${spec.serverLabel}' offers a tool named ${JSON.stringify(t.name)}, as ${other} does; exclude one with allowed_tools`)
      }
      seen.set(t.name, `MCP server '${spec.serverLabel}'`)
      const tool: Tool = { name: t.name, parameters: t.inputSchema }
      if (t.description) tool.description = t.description
      out.push(tool)
    }
  }
  return out
}

/** An approval request the response ended with, or one the client sends back in input. */
export interface ApprovalRequest {
  id: string
  serverLabel: string
  name: string
  arguments: string
}

export interface ApprovalResponse {
  requestId: string
  approve: boolean
  where: string
}

/**
 * Takes the mcp_* items out of `input` (the rest goes to responseInputMessages): approval requests and responses
 * are returned; earlier mcp_call items become a function call and its output; mcp_list_tools items
 * are context the server does not need (it lists again, from its cache).
 */
export function mcpInputItems(input: string | Json[]): { rest: string | Json[]; requests: ApprovalRequest[]; responses: ApprovalResponse[] } {
  const requests: ApprovalRequest[] = []
  const responses: ApprovalResponse[] = []
  if (typeof input === 'string') return { rest: input, requests, responses }
  const rest: Json[] = []
  input.forEach((item, i) => {
    const where = `input[${i}]`
    switch (item.type) {
      case 'mcp_list_tools':
        return
      case 'mcp_approval_request':
        if (typeof item.id !== 'string' || typeof item.name !== 'string' || typeof item.server_label !== 'string') {
          throw invalidParam(where, `${where} (mcp_approval_request) needs id, server_label and name`)
        }
        requests.push({ id: item.id, serverLabel: item.server_label, name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' })
        return
      case 'mcp_approval_response':
        if (typeof item.approval_request_id !== 'string') throw invalidParam(`${where}.approval_request_id`, `${where} (mcp_approval_response) needs approval_request_id`)
        if (typeof item.approve !== 'boolean') throw invalidParam(`${where}.approve`, `${where} (mcp_approval_response) needs approve: true or false`)
        responses.push({ requestId: item.approval_request_id, approve: item.approve, where })
        return
      case 'mcp_call': {
        if (typeof item.id !== 'string' || typeof item.name !== 'string') throw invalidParam(where, `${where} (mcp_call) needs id and name`)
        const answer = typeof item.output === 'string' ? item.output : typeof item.error === 'string' ? `Error: ${item.error}` : ''
        // the call and its answer, as the function-call items the chat layer already understands
        rest.push({ type: 'function_call', call_id: item.id, name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' })
        rest.push({ type: 'function_call_output', call_id: item.id, output: answer })
        return
      }
      default:
        rest.push(item)
    }
  })
  return { rest, requests, responses }
}

/** An MCP call and its answer as chat messages (the assistant's call, the tool's message). */
export function callMessages(id: string, name: string, args: string, answer: string): ChatMessage[] {
  return [
    { role: 'assistant', content: null, toolCalls: [{ id, name, arguments: args }] },
    { role: 'tool', toolCallId: id, content: answer },
  ]
}

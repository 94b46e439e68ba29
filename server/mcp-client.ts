// Remote MCP servers as /v1/responses uses them: connections through the official MCP SDK (Streamable HTTP, and
// the older HTTP+SSE transport when the server answers the Streamable HTTP initialize with a 4xx, as the MCP
// specification's backwards-compatibility section says), every HTTP request through the outbound fetch policy,
// connections and tool lists kept a short while per server (URL and headers), every operation under the
// per-call time limit. Listing fails with an OpenAI-shaped error; a call never throws: its failure is the
// call's `error`, which the model reads as the tool's answer.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { HearthError } from '../lib/errors.js'
import { redact, type OutboundInit, type OutboundPolicy } from '../lib/outbound-fetch.js'
import type { McpServerSpec, McpToolInfo } from './mcp-tools.js'

export interface McpClientOptions {
  /** the per-call time limit: connecting, listing and each tool call (ms) */
  timeoutMs: number
  /** how long a connection and its tool list are reused after their last use (ms) */
  cacheMs: number
}

/** A tool call's outcome, as an mcp_call item carries it. */
export type McpCallResult = { output: string } | { error: string }

const CLIENT_INFO = { name: 'hearth', version: '0.1.0' }
const MAX_LIST_PAGES = 20

interface Entry {
  key: string
  client: Promise<Client>
  tools: { list: McpToolInfo[]; at: number } | null
  /** calls and lists running on this connection */
  busy: number
  /** evicted: closed when the last user is done */
  stale: boolean
  idle: NodeJS.Timeout | null
}

export class McpClients {
  readonly #options: McpClientOptions
  readonly #fetch: FetchLike
  readonly #policy: OutboundPolicy
  readonly #entries = new Map<string, Entry>()
  #closed = false

  constructor(policy: OutboundPolicy, options: McpClientOptions) {
    this.#policy = policy
    this.#options = options
    // a tool call over Streamable HTTP may answer only when the tool is done: the head may take the whole limit
    const fetch = policy.fetcher({ timeoutMs: options.timeoutMs })
    this.#fetch = (url, init) => fetch(url, init as OutboundInit)
  }

  /**
   * The server's tools (every page), from the cache when listed within cacheMs. Throws fetch_not_allowed (the
   * policy refused the URL) or mcp_server_error (unreachable, not an MCP server, an error, the time limit).
   */
  async listTools(spec: McpServerSpec, signal: AbortSignal): Promise<McpToolInfo[]> {
    const entry = this.#entry(spec)
    if (entry.tools && performance.now() - entry.tools.at < this.#options.cacheMs) {
      this.#touch(entry)
      return entry.tools.list
    }
    return this.#using(entry, async () => {
      try {
        const client = await this.#deadline(entry.client, signal, 'connecting')
        const list: McpToolInfo[] = []
        let cursor: string | undefined
        for (let page = 0; page < MAX_LIST_PAGES; page++) {
          const r = await this.#deadline(client.listTools(cursor ? { cursor } : {}, { signal, timeout: this.#options.timeoutMs }), signal, 'listing its tools')
          for (const t of r.tools) {
            list.push({
              name: t.name,
              ...(t.description ? { description: t.description } : {}),
              inputSchema: t.inputSchema as Record<string, unknown>,
              ...(t.annotations ? { annotations: t.annotations as Record<string, unknown> } : {}),
            })
          }
          cursor = r.nextCursor
          if (!cursor) break
        }
        entry.tools = { list, at: performance.now() }
        return list
      } catch (err) {
        this.#evict(entry)
        throw await this.#listError(spec, err)
      }
    })
  }

  /** Runs one tool; every failure (the tool's own, the protocol's, the connection's, the time limit) is an error. */
  async callTool(spec: McpServerSpec, name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<McpCallResult> {
    const entry = this.#entry(spec)
    return this.#using(entry, async () => {
      try {
        const client = await this.#deadline(entry.client, signal, 'connecting')
        const call = client.callTool({ name, arguments: args }, undefined, { signal, timeout: this.#options.timeoutMs })
        return callResult(await this.#deadline(call, signal, `running ${name}`))
      } catch (err) {
        // a connection that failed or timed out is not reused: a late answer must not confuse the next call
        this.#evict(entry)
        if (signal.aborted) throw new HearthError('request_cancelled', 'the request was cancelled')
        return { error: errorText(err) }
      }
    })
  }

  /** Closes every connection; later calls are refused. */
  async close(): Promise<void> {
    this.#closed = true
    const entries = [...this.#entries.values()]
    this.#entries.clear()
    await Promise.all(entries.map((e) => this.#close(e)))
  }

  #entry(spec: McpServerSpec): Entry {
    if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
    const key = JSON.stringify([spec.url.href, Object.entries(spec.headers).sort(([a], [b]) => (a < b ? -1 : 1))])
    let entry = this.#entries.get(key)
    if (!entry) {
      const created: Entry = { key, client: this.#connect(spec), tools: null, busy: 0, stale: false, idle: null }
      created.client.then(
        (c) => {
          // a connection the server or the network ends is not reused
          c.onclose = () => this.#evict(created)
          c.onerror = () => this.#evict(created)
        },
        () => this.#evict(created),
      )
      this.#entries.set(key, created)
      entry = created
    }
    this.#touch(entry)
    return entry
  }

  async #using<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
    entry.busy++
    try {
      return await fn()
    } finally {
      entry.busy--
      if (entry.stale && entry.busy === 0) void this.#close(entry)
      else this.#touch(entry)
    }
  }

  #touch(entry: Entry): void {
    if (entry.idle) clearTimeout(entry.idle)
    entry.idle = null
    if (entry.stale) return
    entry.idle = setTimeout(() => this.#evict(entry), this.#options.cacheMs)
    entry.idle.unref()
  }

  #evict(entry: Entry): void {
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key)
    if (entry.stale) return
    entry.stale = true
    if (entry.idle) clearTimeout(entry.idle)
    if (entry.busy === 0) void this.#close(entry)
  }

  async #close(entry: Entry): Promise<void> {
    if (entry.idle) clearTimeout(entry.idle)
    const client = await entry.client.catch(() => null)
    await client?.close().catch(() => undefined)
  }

  /** A connected client, or a rejection within the time limit (an attempt still running then is closed). */
  #connect(spec: McpServerSpec): Promise<Client> {
    const ms = this.#options.timeoutMs
    let current: Client | null = null
    let late = false
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true
        // the old transport waits for its endpoint event without a limit of its own: closing ends the attempt
        void current?.close().catch(() => undefined)
        reject(new Error(`the MCP server did not finish connecting within ${ms / 1000} s`))
      }, ms)
    })
    const attempt = (async () => {
      const requestInit = { headers: spec.headers }
      const modern = new Client(CLIENT_INFO)
      current = modern
      try {
        const transport = new StreamableHTTPClientTransport(spec.url, { fetch: this.#fetch, requestInit, reconnectionOptions: NO_RECONNECT })
        await modern.connect(transport, { timeout: ms })
        return modern
      } catch (err) {
        await modern.close().catch(() => undefined)
        // an HTTP+SSE server answers the Streamable HTTP initialize POST with a 4xx; anything else is a real failure
        if (late || !(err instanceof StreamableHTTPError) || err.code === undefined || err.code < 400 || err.code > 499) throw err
      }
      const legacy = new Client(CLIENT_INFO)
      current = legacy
      try {
        await legacy.connect(new SSEClientTransport(spec.url, { fetch: this.#fetch, requestInit }), { timeout: ms })
        return legacy
      } catch (err) {
        // the event source would otherwise retry in the background
        await legacy.close().catch(() => undefined)
        throw err
      }
    })()
    attempt.then(
      (c) => late && void c.close().catch(() => undefined),
      () => undefined,
    )
    return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer))
  }

  /** `p`, or a rejection when the time limit passes or the request is cancelled first (never a hang). */
  #deadline<T>(p: Promise<T>, signal: AbortSignal, doing: string): Promise<T> {
    const ms = this.#options.timeoutMs
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the MCP server did not finish ${doing} within ${ms / 1000} s`)), ms)
      onAbort = () => reject(new HearthError('request_cancelled', 'the request was cancelled'))
      signal.addEventListener('abort', onAbort, { once: true })
    })
    return Promise.race([p, stop]).finally(() => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort!)
    })
  }

  async #listError(spec: McpServerSpec, err: unknown): Promise<HearthError> {
    if (err instanceof HearthError && err.code === 'request_cancelled') return err
    // the policy's refusal may be wrapped by the SDK (or lost in the SSE transport's event): ask it again
    const refusal = findCause(err, (e) => e instanceof HearthError && e.code === 'fetch_not_allowed') ?? (await this.#policy.check(spec.url).then(() => null, (e: unknown) => e))
    if (refusal instanceof HearthError && refusal.code === 'fetch_not_allowed') {
      return new HearthError('fetch_not_allowed', `tools[${spec.index}].server_url: ${refusal.message}`, `tools[${spec.index}].server_url`)
    }
    return new HearthError('mcp_server_error', `Error retrieving tool list from MCP server: '${spec.serverLabel}' (${redact(spec.url.href)}): ${errorText(err)}`, `tools[${spec.index}]`)
  }
}

// a dropped stream is the server's business; the next request reconnects
const NO_RECONNECT = { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 }

function findCause(err: unknown, pred: (e: unknown) => boolean): unknown {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) if (pred(e)) return e
  return null
}

function errorText(err: unknown): string {
  const fetchError = findCause(err, (e) => e instanceof HearthError)
  const text = fetchError instanceof Error ? fetchError.message : err instanceof Error ? err.message : String(err)
  // the SDK's "MCP error -32001: Request timed out" names no limit
  return text.replace(/^MCP error -32001: Request timed out.*/s, 'the MCP server did not answer within the time limit')
}

interface ContentItem {
  type: string
  text?: string
}

/** The tool's content as one string: text items joined, any other item as its JSON. */
function callResult(r: unknown): McpCallResult {
  const result = r as { content?: ContentItem[]; structuredContent?: unknown; isError?: boolean; toolResult?: unknown }
  let text: string
  if (Array.isArray(result.content) && result.content.length > 0) {
    text = result.content.map((c) => (c.type === 'text' && typeof c.text === 'string' ? c.text : JSON.stringify(c))).join('\n')
  } else if (result.structuredContent !== undefined) text = JSON.stringify(result.structuredContent)
  else if (result.toolResult !== undefined) text = typeof result.toolResult === 'string' ? result.toolResult : JSON.stringify(result.toolResult)
  else text = ''
  return result.isError ? { error: text || 'the tool reported an error' } : { output: text }
}

// What every handler shares: the configuration, the loaded model (or its loading progress), metrics and the
// response store.
import { basename, join, resolve } from 'node:path'
import { dataDir } from '../lib/data-dir.js'
import { HearthError } from '../lib/errors.js'
import type { Model, ModelOptions } from '../lib/model.js'
import { OutboundPolicy } from '../lib/outbound-fetch.js'
import { McpClients } from './mcp-client.js'
import { Metrics } from './metrics.js'
import { ResponseStore } from './response-store.js'

export interface ServerConfig {
  host: string
  port: number
  modelPath: string
  modelOptions: ModelOptions
  /** every /v1 route needs `Authorization: Bearer <apiKey>` when set */
  apiKey: string | null
  /** allowed CORS origins; ['*'] for any; empty = no CORS headers, and browser requests from other origins are refused */
  cors: string[]
  /** Host names served besides the machine's own (see HostGuard); ['*'] turns the Host check off */
  allowedHosts: string[]
  /** /metrics needs `Authorization: Bearer <metricsKey>` when set; else the API key when that is set */
  metricsKey: string | null
  /** largest request body in bytes */
  bodyLimit: number
  /** time allowed from a request's first byte to the end of its body (408 after) */
  bodyTimeoutMs: number
  /** stored responses for previous_response_id */
  responseStoreSize: number
  responseTtlMs: number
  /** the SQLite file they are kept in, or ':memory:'; null: responses.sqlite in the data folder (lib/data-dir.ts) */
  responsesDb: string | null
  /** one log line per request on stdout */
  logRequests: boolean
  /** remote MCP tools in /v1/responses and the outbound fetch policy they go through */
  mcp: McpConfig
}

export interface McpConfig {
  /** --allow-mcp: without it an mcp tool is a 400 */
  enabled: boolean
  /** --fetch-allow: hosts, .domains, addresses, ranges, or *; empty: public addresses only */
  fetchAllow: string[]
  /** --mcp-auto-approve: no call waits for an approval */
  autoApprove: boolean
  /** --mcp-timeout: connecting, listing, and each call (ms) */
  timeoutMs: number
  /** --max-tool-calls: MCP calls in one response (a request's max_tool_calls may lower it) */
  maxToolCalls: number
  /** --mcp-max-tools: tools of one server given to the model */
  maxTools: number
  /** --mcp-max-result: bytes of one call's output (a larger one is the call's error) */
  maxResultBytes: number
  /** connections and tool lists reused this long after their last use (ms) */
  cacheMs: number
}

export const defaultConfig: Omit<ServerConfig, 'modelPath'> = {
  host: '127.0.0.1',
  port: 1234,
  modelOptions: {},
  apiKey: null,
  cors: [],
  allowedHosts: [],
  metricsKey: null,
  bodyLimit: 16 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
  responseStoreSize: 1000,
  responseTtlMs: 60 * 60 * 1000,
  responsesDb: null,
  logRequests: false,
  mcp: { enabled: false, fetchAllow: [], autoApprove: false, timeoutMs: 30_000, maxToolCalls: 8, maxTools: 64, maxResultBytes: 1024 * 1024, cacheMs: 60_000 },
}

export class ServerState {
  readonly config: ServerConfig
  readonly metrics = new Metrics()
  readonly responses: ResponseStore
  readonly startedAt = Math.floor(Date.now() / 1000)
  model: Model | null = null
  loadProgress = 0
  loadError: HearthError | null = null
  draining = false
  /** remote MCP connections; null when --allow-mcp is off */
  readonly mcp: McpClients | null

  constructor(config: ServerConfig) {
    this.config = config
    const m = config.mcp
    // the SSE stream of the old transport carries every answer: room for the JSON-RPC framing around results
    this.mcp = m.enabled
      ? new McpClients(new OutboundPolicy({ allow: m.fetchAllow, timeoutMs: m.timeoutMs, maxBytes: m.maxResultBytes * 2 + 65536 }), { timeoutMs: m.timeoutMs, cacheMs: m.cacheMs })
      : null
    this.responses = new ResponseStore({
      path: config.responsesDb ?? join(dataDir(), 'responses.sqlite'),
      max: config.responseStoreSize,
      ttlMs: config.responseTtlMs,
    })
  }

  /** Releases what outlives the model (the response database); after the model is disposed. */
  close(): void {
    void this.mcp?.close()
    this.responses.close()
  }

  /** The id the configured model will have once loaded: its file name without .gguf. */
  get configuredModelId(): string {
    return basename(this.config.modelPath).replace(/\.gguf$/i, '')
  }

  /** Names the loaded model answers to: its id, its file name and its path. */
  modelNames(m: Model): string[] {
    return [m.id, basename(m.path), m.path, resolve(m.path)]
  }

  /**
   * The model a request asks for: the loaded one when `name` is empty or names it; otherwise
   * model_not_found (404). model_loading (503) until it has loaded.
   */
  resolveModel(name: string | null | undefined): Model {
    if (this.draining) throw new HearthError('shutting_down', 'the server is shutting down')
    if (!this.model) {
      if (this.loadError) throw this.loadError
      throw new HearthError('model_loading', `the model is loading (${Math.round(this.loadProgress * 100)}%); retry shortly`)
    }
    if (name && !this.modelNames(this.model).includes(name)) {
      throw new HearthError('model_not_found', `The model \`${name}\` does not exist or is not loaded; this server serves \`${this.model.id}\``, 'model')
    }
    return this.model
  }
}

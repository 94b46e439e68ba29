// What every handler shares: the configuration, the models (the registry: available, loaded, loading), the memory
// budget and CPU threads they share, metrics and the response store.
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { dataDir } from '../lib/data-dir.js'
import type { EmbeddingModel } from '../lib/embedding-model.js'
import { HearthError, invalidParam, toHearthError } from '../lib/errors.js'
import { MemoryBudget } from '../lib/memory-budget.js'
import { MAX_TTL_MS, ModelRegistry, modelLoader, type ServedModel } from '../lib/model-registry.js'
import { defaultModelPath, type Model, type ModelOptions } from '../lib/model.js'
import { OutboundPolicy } from '../lib/outbound-fetch.js'
import { ThreadShare } from '../lib/thread-share.js'
import type { Reply } from './http.js'
import { McpClients } from './mcp-client.js'
import { Metrics } from './metrics.js'
import { ResponseStore } from './response-store.js'
export interface ServerConfig {
  host: string
  port: number
  /** loaded at start and kept; answers requests that name no model */
  modelPath: string
  /** defaults of every model load (--ctx, --parallel, --threads ...); `threads` is the total all models share */
  modelOptions: ModelOptions
  /** models folders (--models-dir); null: models/ in the data folder (lib/data-dir.ts) */
  modelsDirs: string[] | null
  /** load a model a request names when it is not loaded */
  jit: boolean
  /** idle time after which a JIT-loaded model is unloaded; null: never */
  ttlMs: number | null
  /** keep at most maxModels JIT-loaded models */
  autoEvict: boolean
  maxModels: number
  /** the memory budget of loaded models (and prompt caches); null: MemoryBudget.fromMachine() */
  maxMemoryBytes: number | null
  /** client-side model names to model ids; '*' takes every unknown name */
  aliases: [string, string][]
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
  modelsDirs: null,
  jit: true,
  ttlMs: 60 * 60 * 1000,
  autoEvict: true,
  maxModels: 1,
  maxMemoryBytes: null,
  aliases: [],
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

/** The models folder when --models-dir is not given. */
export function defaultModelsDir(): string {
  return join(dataDir(), 'models')
}

export type RequestPurpose = 'generate' | 'embed'

export class ServerState {
  readonly config: ServerConfig
  readonly metrics = new Metrics()
  readonly responses: ResponseStore
  readonly startedAt = Math.floor(Date.now() / 1000)
  readonly budget: MemoryBudget
  readonly threads: ThreadShare
  readonly registry: ModelRegistry
  draining = false
  /** remote MCP connections; null when --allow-mcp is off */
  readonly mcp: McpClients | null
  /** the start model's load (--model): set by start() */
  #start: { state: 'loading' | 'loaded' | 'error'; error: string | null } = { state: 'loading', error: null }

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
    this.budget = config.maxMemoryBytes !== null ? new MemoryBudget(config.maxMemoryBytes) : MemoryBudget.fromMachine()
    this.threads = new ThreadShare(config.modelOptions.threads ?? availableParallelism())
    const files = [{ path: defaultModelPath }, ...(config.modelPath !== defaultModelPath ? [{ path: config.modelPath }] : [])]
    this.registry = new ModelRegistry({
      dirs: config.modelsDirs ?? [defaultModelsDir()],
      files,
      startModel: config.modelPath,
      jit: config.jit,
      ttlMs: config.ttlMs,
      autoEvict: config.autoEvict,
      maxModels: config.maxModels,
      budget: this.budget,
      aliases: new Map(config.aliases),
      loader: modelLoader({ ...config.modelOptions, threadShare: this.threads, memoryBudget: this.budget }, config.modelPath),
    })
  }

  /** Scans the folders and loads the start model; /health follows it (startStatus). */
  start(): Promise<ServedModel | null> {
    return this.registry.start().then(
      (m) => {
        this.#start = { state: 'loaded', error: null }
        return m
      },
      (err: unknown) => {
        const e = toHearthError(err)
        this.#start = { state: 'error', error: e.message }
        throw e
      },
    )
  }

  /** The start model's load as /health reports it. */
  startStatus(): { state: 'loading' | 'loaded' | 'error'; id: string | null; progress: number; error: string | null } {
    const id = this.registry.startId
    const progress = id ? Math.round((this.registry.view(id)?.progress ?? 0) * 100) / 100 : 0
    return { ...this.#start, id, progress: this.#start.state === 'loaded' ? 1 : progress }
  }

  /** Releases what outlives the models (the response database); after the models are unloaded. */
  close(): void {
    void this.mcp?.close()
    this.responses.close()
  }

  /**
   * The model a request names (its `model` field; empty: the start model), loaded first when it is not (JIT) and
   * kept loaded until the reply has ended (or the client has gone); the reply's `arrived` announces the request to
   * the scheduler (the endpoint calls it once it has submitted; app.ts when the handler ends). `ttl` is LM Studio's per-request idle TTL in seconds.
   * Throws model_not_found (404, with the available ids), wrong_model_type (400), model_load_failed ...
   */
  useModel(reply: Reply, name: string | null | undefined, options: { purpose: 'generate'; ttl?: number | null }): Promise<Model>
  useModel(reply: Reply, name: string | null | undefined, options: { purpose: 'embed'; ttl?: number | null }): Promise<Model | EmbeddingModel>
  async useModel(reply: Reply, name: string | null | undefined, options: { purpose: RequestPurpose; ttl?: number | null }): Promise<Model | EmbeddingModel> {
    if (this.draining) throw new HearthError('shutting_down', 'the server is shutting down')
    const ttlMs = ttlOption(options.ttl)
    const lease = await this.registry.acquire(name, { purpose: options.purpose, ...(ttlMs !== null ? { ttlMs } : {}) })
    const model = lease.model
    // the scheduler waits for announced requests before its first step from idle (Scheduler.expectArrival)
    const announced = model.kind === 'llm' && options.purpose === 'generate' ? model.scheduler.expectArrival() : () => undefined
    reply.arrived = announced
    // held until the reply ends, so a handler that runs the model more than once (an agent loop between tool
    // calls) keeps it loaded throughout; once its work is queued, Model.busy() holds an unload as well
    reply.onDone(() => lease.release())
    return model
  }
}

/** A request's `ttl` (seconds) as milliseconds; null when absent. */
export function ttlOption(ttl: number | null | undefined, param = 'ttl'): number | null {
  if (ttl === undefined || ttl === null) return null
  if (!(Number.isFinite(ttl) && ttl > 0 && ttl * 1000 <= MAX_TTL_MS)) {
    throw invalidParam(param, `${param} must be a number of seconds between 0 and ${Math.floor(MAX_TTL_MS / 1000)}`)
  }
  return Math.round(ttl * 1000)
}

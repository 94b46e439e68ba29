// The server: node:http (http-server.ts) with the route table, Host/Origin checks, keys, CORS and the request
// log, and the start model loaded in the background (so /health can answer 503 while it loads); other models load
// on request (server/state.ts, lib/model-registry.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HearthError } from '../lib/errors.js'
import type { ServedModel } from '../lib/model-registry.js'
import { bearerMatches, browserRefusal, HostGuard } from './http-guard.js'
import { createHttpServer } from './http-server.js'
import { parseJson, readBody, Reply, type HeaderList, type RequestInfo } from './http.js'
import { routes, type Auth, type Route } from './routes.js'
import { ServerState, type ServerConfig } from './state.js'

export interface HearthServer {
  readonly state: ServerState
  /** the port actually bound (useful with port 0) */
  readonly port: number
  readonly url: string
  /** resolves when the start model (--model) has loaded; rejects when it cannot */
  readonly ready: Promise<ServedModel | null>
  /** stops listening, lets running requests finish, unloads the models */
  close(): Promise<void>
}

// a keep-alive connection with no request is closed after this long
const IDLE_TIMEOUT_MS = 10_000
// on close(), connections still sending a finished reply are cut after this long
const CLOSE_GRACE_MS = 1000
const NO_HEADERS: HeaderList = []

function corsHeaders(config: ServerConfig, info: RequestInfo): HeaderList {
  const origin = info.headers.origin
  if (config.cors.length === 0 || !origin) return NO_HEADERS
  const allowed = config.cors.includes('*') ? '*' : config.cors.includes(origin) ? origin : null
  if (!allowed) return NO_HEADERS
  return ['Access-Control-Allow-Origin', allowed, 'Vary', 'Origin']
}

/** The 401 for a request without the key its route needs, or null. */
function authRefusal(config: ServerConfig, auth: Auth, info: RequestInfo): HearthError | null {
  const key = auth === 'metrics' ? (config.metricsKey ?? config.apiKey) : auth === 'api' ? config.apiKey : null
  if (!key || bearerMatches(key, info.headers.authorization)) return null
  const which = auth === 'metrics' && config.metricsKey ? 'the metrics key (--metrics-key)' : 'the API key'
  return new HearthError('invalid_api_key', `Incorrect API key provided. Pass ${which} as "Authorization: Bearer <key>".`)
}

const METHODS: Record<Route['method'], string> = { get: 'GET', post: 'POST', del: 'DELETE' }

/**
 * Finds a request's route: fixed paths by lookup, paths with `:name` segments by matching segment by segment
 * (the matched segments are the params, %-decoded). 'method' when the path exists for other methods.
 */
class Router {
  readonly #fixed = new Map<string, Map<string, Route>>()
  readonly #patterns: { segments: string[]; byMethod: Map<string, Route> }[] = []

  constructor(table: Route[]) {
    for (const r of table) {
      const method = METHODS[r.method]
      if (!r.path.includes('/:')) {
        const byMethod = this.#fixed.get(r.path) ?? new Map<string, Route>()
        byMethod.set(method, r)
        this.#fixed.set(r.path, byMethod)
        continue
      }
      const segments = r.path.split('/')
      let p = this.#patterns.find((x) => x.segments.join('/') === r.path)
      if (!p) this.#patterns.push((p = { segments, byMethod: new Map() }))
      p.byMethod.set(method, r)
    }
  }

  find(method: string, path: string): { route: Route; params: string[] } | 'method' | null {
    const fixed = this.#fixed.get(path)
    if (fixed) {
      const route = fixed.get(method)
      return route ? { route, params: [] } : 'method'
    }
    const parts = path.split('/')
    for (const p of this.#patterns) {
      if (p.segments.length !== parts.length) continue
      const params: string[] = []
      let ok = true
      for (let i = 0; i < parts.length && ok; i++) {
        const s = p.segments[i]!
        if (s.startsWith(':')) {
          ok = parts[i] !== ''
          params.push(safeDecode(parts[i]!))
        } else ok = s === parts[i]
      }
      if (!ok) continue
      const route = p.byMethod.get(method)
      return route ? { route, params } : 'method'
    }
    return null
  }
}

// a malformed %-escape is kept as written
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

function logLine(reply: Reply): string {
  const ms = (performance.now() - reply.startedAt).toFixed(0)
  const tokens = reply.promptTokens || reply.completionTokens ? ` ${reply.promptTokens}+${reply.completionTokens} tokens` : ''
  return `${new Date().toISOString()} ${reply.req.method} ${reply.req.url} ${reply.status}${tokens} ${ms}ms`
}

export function startServer(config: ServerConfig, onProgress?: (p: number) => void): Promise<HearthServer> {
  const state = new ServerState(config)
  const hosts = new HostGuard(config.host, config.allowedHosts)
  const router = new Router(routes)

  // one finish callback per metrics label: requests refused before routing count as 'refused'
  const finishers = new Map<string, (reply: Reply) => void>()
  const onFinish = (label: string) => {
    let fn = finishers.get(label)
    if (!fn) {
      fn = (reply: Reply) => {
        state.metrics.request(label, reply.status)
        if (config.logRequests) process.stdout.write(logLine(reply) + '\n')
      }
      finishers.set(label, fn)
    }
    return fn
  }

  const preflight = (reply: Reply): void => {
    reply.send(204, '', null, [
      'Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS',
      'Access-Control-Allow-Headers', reply.info.headers['access-control-request-headers'] ?? 'Authorization, Content-Type',
      'Access-Control-Max-Age', '86400',
    ])
  }

  const serve = (req: IncomingMessage, res: ServerResponse, info: RequestInfo, refusal: HearthError | null): Reply => {
    const found = refusal ? null : router.find(info.method, info.url)
    const label = refusal ? 'refused' : found === null || found === 'method' ? (info.method === 'OPTIONS' ? 'OPTIONS' : 'unmatched') : found.route.path
    const reply = new Reply(req, res, info, corsHeaders(config, info), onFinish(label))
    if (refusal) {
      // what follows a malformed request on its connection cannot be trusted to be framed as node read it
      reply.error(refusal, true)
      return reply
    }
    const browser = browserRefusal(hosts, config.cors, info.host, info.headers.origin)
    if (browser) {
      reply.error(browser)
      return reply
    }
    if (info.method === 'OPTIONS') {
      preflight(reply)
      return reply
    }
    if (found === null || found === 'method') {
      reply.error(
        found === 'method'
          ? new HearthError('method_not_allowed', `${info.method} is not allowed on ${info.url}`)
          : new HearthError('not_found', `no route for ${info.method} ${info.url}`),
      )
      return reply
    }
    const { route, params } = found
    info.params = params
    const auth = authRefusal(config, route.auth, info)
    if (auth) {
      reply.error(auth)
      return reply
    }
    const run = (body: unknown) => route.handler(state, reply, body, params)
    if (!route.body) {
      // most GETs answer synchronously: no promise unless the handler returns one
      try {
        const r = run(null)
        if (r) r.catch((err: unknown) => reply.error(err))
      } catch (err) {
        reply.error(err)
      }
      return reply
    }
    readBody(reply, config.bodyLimit)
      .then((buf) => run(parseJson(buf)))
      .catch((err: unknown) => reply.error(err))
      .finally(() => reply.arrived())
    return reply
  }

  const server = createHttpServer({
    bodyTimeoutMs: config.bodyTimeoutMs,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    onRequest: serve,
    onRefused: (err, method, target) => {
      state.metrics.request('refused', err.status)
      if (config.logRequests) process.stdout.write(`${new Date().toISOString()} ${method ?? '-'} ${target ?? '-'} ${err.status} ${err.code}\n`)
    },
  })

  const unsubscribe = onProgress ? state.registry.subscribe((e) => e.kind === 'progress' && onProgress(e.progress)) : () => true
  const ready = state.start().finally(unsubscribe)
  ready.catch(() => undefined) // reported through /health and the CLI

  return new Promise<number>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`hearth: cannot listen on ${config.host}:${config.port} (${err.code === 'EADDRINUSE' ? 'in use' : err.code === 'EACCES' ? 'not permitted' : err.message})`))
    })
    server.listen(config.port, config.host, () => resolve((server.address() as AddressInfo).port))
  }).then((port) => {
    let closing: Promise<void> | null = null
    return {
      state,
      port,
      url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
      ready,
      close() {
        closing ??= (async () => {
          state.draining = true
          // stops accepting and closes idle keep-alive connections; resolves when every connection has closed
          const closed = new Promise<void>((resolve) => server.close(() => resolve()))
          await ready.catch(() => undefined)
          await state.registry.close()
          state.close()
          // connections still open (a slow reader of a finished stream, whose end node still holds) get a moment
          let timer: NodeJS.Timeout | undefined
          await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))])
          clearTimeout(timer)
          server.closeAllConnections()
        })()
        return closing
      },
    }
  })
}

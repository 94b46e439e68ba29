// The server: the HTTP front (http-front.ts) on the public address, the uWS app behind it on a private
// socket with the route table, Host/Origin checks, keys, CORS and the request log, and the start model loaded in
// the background (so /health can answer 503 while it loads); other models load on request (server/state.ts).
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HearthError } from '../lib/errors.js'
import type { ServedModel } from '../lib/model-registry.js'
import { startFront } from './http-front.js'
import { bearerMatches, browserRefusal, HostGuard } from './http-guard.js'
import { parseJson, readBody, Reply, requestInfo, type RequestInfo } from './http.js'
import { routes, type Auth, type Route } from './routes.js'
import { ServerState, type ServerConfig } from './state.js'
import { native as uws, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js'

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

function corsHeaders(config: ServerConfig, info: RequestInfo): [string, string][] {
  const origin = info.headers.origin
  if (config.cors.length === 0 || !origin) return []
  const allowed = config.cors.includes('*') ? '*' : config.cors.includes(origin) ? origin : null
  if (!allowed) return []
  return [['Access-Control-Allow-Origin', allowed], ['Vary', 'Origin']]
}

// a keep-alive connection with no request is closed after this long (as uWS did on its own)
const IDLE_TIMEOUT_MS = 10_000

/** The 401 for a request without the key its route needs, or null. */
function authRefusal(config: ServerConfig, auth: Auth, info: RequestInfo): HearthError | null {
  const key = auth === 'metrics' ? (config.metricsKey ?? config.apiKey) : auth === 'api' ? config.apiKey : null
  if (!key || bearerMatches(key, info.headers.authorization)) return null
  const which = auth === 'metrics' && config.metricsKey ? 'the metrics key (--metrics-key)' : 'the API key'
  return new HearthError('invalid_api_key', `Incorrect API key provided. Pass ${which} as "Authorization: Bearer <key>".`)
}

function logLine(reply: Reply): string {
  const ms = (performance.now() - reply.startedAt).toFixed(0)
  const tokens = reply.promptTokens || reply.completionTokens ? ` ${reply.promptTokens}+${reply.completionTokens} tokens` : ''
  return `${new Date().toISOString()} ${reply.info.method} ${reply.info.url} ${reply.status}${tokens} ${ms}ms`
}

export function startServer(config: ServerConfig, onProgress?: (p: number) => void): Promise<HearthServer> {
  const state = new ServerState(config)
  const app = uws.App()
  const inflight = new Set<Reply>()
  const hosts = new HostGuard(config.host, config.allowedHosts)

  const onFinish = (route: string) => (reply: Reply) => {
    inflight.delete(reply)
    state.metrics.request(route, reply.status)
    if (config.logRequests) process.stdout.write(logLine(reply) + '\n')
  }

  const serve = (route: Route) => (res: HttpResponse, req: HttpRequest) => {
    const nParams = (route.path.match(/:/g) ?? []).length
    const info = requestInfo(req, nParams)
    const reply = new Reply(res, info, corsHeaders(config, info), onFinish(route.path))
    inflight.add(reply)
    const refusal = browserRefusal(hosts, config.cors, info.headers) ?? authRefusal(config, route.auth, info)
    if (refusal) {
      reply.error(refusal)
      return
    }
    const run = (body: unknown) => route.handler(state, reply, body, info.params)
    const work = route.body ? readBody(res, reply, config.bodyLimit).then((buf) => run(parseJson(buf))) : Promise.resolve().then(() => run(null))
    work.catch((err: unknown) => reply.error(err)).finally(() => reply.arrived())
  }

  const byPath = new Map<string, Route['method'][]>()
  for (const r of routes) {
    app[r.method](r.path, serve(r))
    byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.method])
  }
  app.options('/*', (res, req) => {
    const info = requestInfo(req, 0)
    const reply = new Reply(res, info, corsHeaders(config, info), onFinish('OPTIONS'))
    const refusal = browserRefusal(hosts, config.cors, info.headers)
    if (refusal) {
      reply.error(refusal)
      return
    }
    reply.send(204, '', null, [
      ['Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS'],
      ['Access-Control-Allow-Headers', info.headers['access-control-request-headers'] ?? 'Authorization, Content-Type'],
      ['Access-Control-Max-Age', '86400'],
    ])
  })
  app.any('/*', (res, req) => {
    const info = requestInfo(req, 0)
    const reply = new Reply(res, info, corsHeaders(config, info), onFinish('unmatched'))
    const refusal = browserRefusal(hosts, config.cors, info.headers)
    if (refusal) {
      reply.error(refusal)
      return
    }
    const known = routes.some((r) => new RegExp('^' + r.path.replace(/:[^/]+/g, '[^/]+') + '$').test(info.url))
    reply.error(
      known
        ? new HearthError('method_not_allowed', `${info.method} is not allowed on ${info.url}`)
        : new HearthError('not_found', `no route for ${info.method} ${info.url}`),
    )
  })

  const unsubscribe = onProgress ? state.registry.subscribe((e) => e.kind === 'progress' && onProgress(e.progress)) : () => true
  const ready = state.registry.start().finally(unsubscribe)
  ready.catch(() => undefined) // reported through /health and the CLI

  return listen(app, config, state).then(({ port, stop }) => {
    let closing: Promise<void> | null = null
    return {
      state,
      port,
      url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
      ready,
      close() {
        closing ??= (async () => {
          state.draining = true
          stop.accepting()
          await ready.catch(() => undefined)
          await state.registry.close()
          state.close()
          // replies still open (slow readers of finished streams) get a moment to drain
          for (let i = 0; i < 50 && inflight.size > 0; i++) await new Promise((r) => setTimeout(r, 20))
          stop.all()
        })()
        return closing
      },
    }
  })
}

/**
 * uWS listens on a private endpoint (a socket file in a fresh 0700 directory; loopback TCP on Windows) and the
 * front on the configured address. Resolves with the public port and the two stages of shutting down.
 */
function listen(app: TemplatedApp, config: ServerConfig, state: ServerState): Promise<{ port: number; stop: { accepting(): void; all(): void } }> {
  const dir = process.platform === 'win32' ? null : mkdtempSync(join(tmpdir(), 'hearth-'))
  const path = dir ? join(dir, 'uws.sock') : null
  const removeDir = () => dir && rmSync(dir, { recursive: true, force: true })
  return new Promise<{ socket: us_listen_socket; upstream: () => ReturnType<typeof connect> }>((resolve, reject) => {
    const done = (socket: us_listen_socket | false, upstream: () => ReturnType<typeof connect>) => {
      if (socket) resolve({ socket, upstream })
      else {
        removeDir()
        reject(new Error(`hearth: cannot open the internal HTTP socket ${path ?? '127.0.0.1'}`))
      }
    }
    if (path) app.listen_unix((socket) => done(socket, () => connect(path)), path)
    else {
      app.listen('127.0.0.1', 0, (socket) => {
        const port = socket ? uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0]) : 0
        done(socket, () => connect(port, '127.0.0.1'))
      })
    }
  }).then(
    ({ socket, upstream }) =>
      new Promise((resolve, reject) => {
        const front = startFront({
          bodyLimit: config.bodyLimit,
          bodyTimeoutMs: config.bodyTimeoutMs,
          idleTimeoutMs: IDLE_TIMEOUT_MS,
          connectUpstream: upstream,
          onRefused: (err, method, target) => {
            state.metrics.request('front', err.status)
            if (config.logRequests) process.stdout.write(`${new Date().toISOString()} ${method ?? '-'} ${target ?? '-'} ${err.status} ${err.code}\n`)
          },
        })
        const closeAll = () => {
          front.destroyAll()
          uws.us_listen_socket_close(socket)
          removeDir()
        }
        front.server.once('error', (err: NodeJS.ErrnoException) => {
          closeAll()
          reject(new Error(`hearth: cannot listen on ${config.host}:${config.port} (${err.code === 'EADDRINUSE' ? 'in use' : err.code === 'EACCES' ? 'not permitted' : err.message})`))
        })
        front.server.listen(config.port, config.host, () => {
          resolve({ port: (front.server.address() as AddressInfo).port, stop: { accepting: () => front.close(), all: closeAll } })
        })
      }),
  )
}

// The server: the uWS app with the route table, API key, CORS, request log, and the model loaded in the
// background (so /health can answer 503 while it loads).
import { HearthError } from '../lib/errors.js'
import { Model } from '../lib/model.js'
import { parseJson, readBody, Reply, requestInfo, type RequestInfo } from './http.js'
import { routes, type Route } from './routes.js'
import { ServerState, type ServerConfig } from './state.js'
import { native as uws, type HttpRequest, type HttpResponse, type us_listen_socket } from './uws.js'

export interface HearthServer {
  readonly state: ServerState
  /** the port actually bound (useful with port 0) */
  readonly port: number
  readonly url: string
  /** resolves when the model has loaded; rejects when it cannot */
  readonly ready: Promise<Model>
  /** stops listening, lets running requests finish, frees the model */
  close(): Promise<void>
}

function corsHeaders(config: ServerConfig, info: RequestInfo): [string, string][] {
  const origin = info.headers.origin
  if (config.cors.length === 0 || !origin) return []
  const allowed = config.cors.includes('*') ? '*' : config.cors.includes(origin) ? origin : null
  if (!allowed) return []
  return [['Access-Control-Allow-Origin', allowed], ['Vary', 'Origin']]
}

function authorized(config: ServerConfig, info: RequestInfo): boolean {
  if (!config.apiKey) return true
  return info.headers.authorization === `Bearer ${config.apiKey}`
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
    if (route.auth && !authorized(config, info)) {
      reply.error(new HearthError('invalid_api_key', 'Incorrect API key provided. Pass it as "Authorization: Bearer <key>".'))
      return
    }
    if (route.generates && state.model) reply.arrived = state.model.scheduler.expectArrival()
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
    reply.send(204, '', null, [
      ['Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS'],
      ['Access-Control-Allow-Headers', info.headers['access-control-request-headers'] ?? 'Authorization, Content-Type'],
      ['Access-Control-Max-Age', '86400'],
    ])
  })
  app.any('/*', (res, req) => {
    const info = requestInfo(req, 0)
    const reply = new Reply(res, info, corsHeaders(config, info), onFinish('unmatched'))
    const known = routes.some((r) => new RegExp('^' + r.path.replace(/:[^/]+/g, '[^/]+') + '$').test(info.url))
    reply.error(
      known
        ? new HearthError('method_not_allowed', `${info.method} is not allowed on ${info.url}`)
        : new HearthError('not_found', `no route for ${info.method} ${info.url}`),
    )
  })

  const ready = Model.load(config.modelPath, {
    ...config.modelOptions,
    onProgress: (p) => {
      state.loadProgress = p
      onProgress?.(p)
    },
  }).then(
    (model) => {
      state.model = model
      return model
    },
    (err: unknown) => {
      state.loadError = err instanceof HearthError ? err : new HearthError('model_load_failed', String(err))
      throw state.loadError
    },
  )
  ready.catch(() => undefined) // reported through /health and the CLI

  return new Promise((resolve, reject) => {
    app.listen(config.host, config.port, (socket: us_listen_socket | false) => {
      if (!socket) {
        reject(new Error(`hearth: cannot listen on ${config.host}:${config.port} (in use or not permitted)`))
        return
      }
      const port = uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0])
      let closing: Promise<void> | null = null
      resolve({
        state,
        port,
        url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
        ready,
        close() {
          closing ??= (async () => {
            state.draining = true
            uws.us_listen_socket_close(socket)
            await ready.then((m) => m.dispose(), () => undefined)
            state.close()
            // replies still open (slow readers of finished streams) get a moment to drain
            for (let i = 0; i < 50 && inflight.size > 0; i++) await new Promise((r) => setTimeout(r, 20))
          })()
          return closing
        },
      })
    })
  })
}

// HTTP plumbing over uWebSockets.js: a reply that finishes exactly once, body reading with a size limit,
// and an SSE writer that batches the frames of one decode step into one corked write and honours
// backpressure. Rules kept here so handlers need not know them: onAborted is registered before any await,
// every write after an await is corked, and nothing touches the response once the client is gone.
import { HearthError, toHearthError } from '../lib/errors.js'
import { checkJsonValueLimits } from '../lib/json-limits.js'
import type { HttpRequest, HttpResponse } from './uws.js'

/** What a handler may read of the request: copied synchronously, valid after any await. */
export interface RequestInfo {
  method: string
  url: string
  query: string
  headers: Record<string, string>
  params: string[]
}

export function requestInfo(req: HttpRequest, nParams: number): RequestInfo {
  const headers: Record<string, string> = {}
  req.forEach((k, v) => (headers[k] = v))
  const params: string[] = []
  for (let i = 0; i < nParams; i++) params.push(safeDecode(req.getParameter(i) ?? ''))
  return { method: req.getMethod().toUpperCase(), url: req.getUrl(), query: req.getQuery() ?? '', headers, params }
}

// a malformed %-escape is kept as written rather than thrown inside a uWS callback
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string }
}

export function errorBody(err: HearthError): ErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } }
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 417: 'Expectation Failed', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
}

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim()
}

export class Reply {
  readonly res: HttpResponse
  readonly info: RequestInfo
  readonly startedAt = performance.now()
  /** headers added to every response (CORS) */
  readonly extraHeaders: [string, string][]
  aborted = false
  finished = false
  status = 0
  /** tokens in and out, for the request log */
  promptTokens = 0
  completionTokens = 0
  /**
   * Tells the scheduler this request has submitted its sequences (or never will): see
   * Scheduler.expectArrival. Idempotent; the endpoint calls it right after submitting, app.ts when the
   * handler is done.
   */
  arrived: () => void = () => {}
  #onAbort: (() => void)[] = []
  #onFinish: ((reply: Reply) => void) | null

  constructor(res: HttpResponse, info: RequestInfo, extraHeaders: [string, string][], onFinish: (reply: Reply) => void) {
    this.res = res
    this.info = info
    this.extraHeaders = extraHeaders
    this.#onFinish = onFinish
    res.onAborted(() => {
      this.aborted = true
      for (const fn of this.#onAbort.splice(0)) fn()
      this.#finish(this.status || 499)
    })
  }

  /** Runs `fn` when the client goes away before the reply ends (at once if it already has). */
  onAbort(fn: () => void): void {
    if (this.aborted) fn()
    else if (!this.finished) this.#onAbort.push(fn)
  }

  get open(): boolean {
    return !this.aborted && !this.finished
  }

  #writeHead(status: number, contentType: string | null, headers: [string, string][] = []): void {
    this.status = status
    this.res.writeStatus(statusLine(status))
    if (contentType) this.res.writeHeader('Content-Type', contentType)
    for (const [k, v] of this.extraHeaders) this.res.writeHeader(k, v)
    for (const [k, v] of headers) this.res.writeHeader(k, v)
  }

  /** `closeConnection` for replies sent before the body was read (413), so the rest is not parsed as a request */
  send(status: number, body: string, contentType: string | null, headers: [string, string][] = [], closeConnection = false): void {
    if (!this.open) return
    this.res.cork(() => {
      this.#writeHead(status, contentType, headers)
      this.res.end(body, closeConnection)
    })
    this.#finish(status)
  }

  json(status: number, body: unknown, headers: [string, string][] = [], closeConnection = false): void {
    this.send(status, JSON.stringify(body), 'application/json', headers, closeConnection)
  }

  error(err: unknown): void {
    const e = toHearthError(err)
    const headers: [string, string][] = e.status === 429 || e.status === 503 ? [['Retry-After', '1']] : []
    this.json(e.status, errorBody(e), headers, e.code === 'request_too_large')
  }

  /** Starts a text/event-stream response. */
  sse(): SseWriter {
    return new SseWriter(this)
  }

  /** @internal the SSE writer's access to the head and the end */
  sseHead(): void {
    this.#writeHead(200, 'text/event-stream', [['Cache-Control', 'no-cache'], ['Connection', 'keep-alive'], ['X-Accel-Buffering', 'no']])
  }

  /** @internal */
  markFinished(): void {
    this.#finish(this.status)
  }

  #finish(status: number): void {
    if (this.finished) return
    this.finished = true
    this.status = status
    this.#onAbort = []
    const cb = this.#onFinish
    this.#onFinish = null
    cb?.(this)
  }
}

// uWS 20.30 loses data when one corked write overflows its 16 KiB cork buffer while the socket is
// backpressured (AsyncSocket::uncork drops the overflowing part; fixed upstream in 2026, not in the binary we
// can use). So no write inside a cork is larger than this, head included.
const CORK_SAFE_BYTES = 12 * 1024

/**
 * Frames written in one synchronous run (one decode step) go out in one corked write on the next
 * microtask, in pieces of at most CORK_SAFE_BYTES. When uWS reports backpressure, later frames wait in memory
 * until onWritable, which also ends the response when end() came while blocked (the last write may be the one
 * that met backpressure).
 */
export class SseWriter {
  readonly #reply: Reply
  #pending = ''
  /** bytes taken out of #pending and not yet written (a large flush cut into pieces); they go first */
  #rest: Buffer | null = null
  #scheduled = false
  #blocked = false
  #ending = false
  #headSent = false

  constructor(reply: Reply) {
    this.#reply = reply
    reply.res.onWritable(() => {
      this.#blocked = false
      if (this.#hasPending() || this.#ending) this.#flush()
      return !this.#blocked
    })
  }

  /** `data: <json>\n\n`, or with `event` an `event: <event>\n` line first */
  send(data: unknown, event?: string): void {
    this.raw((event ? `event: ${event}\n` : '') + `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
  }

  raw(frame: string): void {
    if (!this.#reply.open || this.#ending) return
    this.#pending += frame
    if (!this.#scheduled && !this.#blocked) {
      this.#scheduled = true
      queueMicrotask(() => {
        this.#scheduled = false
        this.#flush()
      })
    }
  }

  /** Ends the stream after everything written so far. */
  end(): void {
    if (this.#ending) return
    this.#ending = true
    if (!this.#scheduled && !this.#blocked) this.#flush()
  }

  #hasPending(): boolean {
    return this.#rest !== null || this.#pending !== ''
  }

  /** The next piece to write: all of #pending when it surely fits (a UTF-16 unit is at most 3 UTF-8 bytes). */
  #nextPiece(): string | Buffer | null {
    if (this.#rest === null && this.#pending.length * 3 <= CORK_SAFE_BYTES) {
      const piece = this.#pending
      this.#pending = ''
      return piece || null
    }
    if (this.#pending) {
      const bytes = Buffer.from(this.#pending, 'utf8')
      this.#rest = this.#rest ? Buffer.concat([this.#rest, bytes]) : bytes
      this.#pending = ''
    }
    const rest = this.#rest!
    const piece = rest.subarray(0, CORK_SAFE_BYTES)
    this.#rest = piece.length < rest.length ? rest.subarray(piece.length) : null
    return piece
  }

  #flush(): void {
    const reply = this.#reply
    do {
      if (!reply.open) return
      const piece = this.#nextPiece()
      reply.res.cork(() => {
        if (!this.#headSent) {
          this.#headSent = true
          reply.sseHead()
        }
        if (piece !== null && !reply.res.write(piece)) this.#blocked = true
        if (this.#ending && !this.#blocked && !this.#hasPending()) reply.res.end()
      })
    } while (!this.#blocked && this.#hasPending())
    if (this.#ending && !this.#blocked && !this.#hasPending()) reply.markFinished()
  }
}

/** Reads the whole body, refusing more than `limit` bytes. The handler must call this synchronously. */
export function readBody(res: HttpResponse, reply: Reply, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(reply.info.headers['content-length'] ?? NaN)
    if (declared > limit) {
      reject(new HearthError('request_too_large', `the body is larger than the ${limit}-byte limit`))
      return
    }
    const parts: Buffer[] = []
    let size = 0
    let failed = false
    res.onData((chunk, isLast) => {
      if (failed) return
      size += chunk.byteLength
      if (size > limit) {
        failed = true
        reject(new HearthError('request_too_large', `the body is larger than the ${limit}-byte limit`))
        return
      }
      parts.push(Buffer.from(chunk.slice(0))) // uWS reuses the chunk's memory after this callback
      if (isLast) resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts))
    })
    reply.onAbort(() => {
      if (!failed) reject(new HearthError('internal_error', 'the client went away'))
      failed = true
    })
  })
}

/** Nesting a request body may have: deeper values cannot be walked or echoed back safely (JSON.stringify overflows
 * the stack at a few thousand levels), and no field of any endpoint needs more (schemas are bounded at 128). */
export const MAX_BODY_DEPTH = 512

export function parseJson(body: Buffer): unknown {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new HearthError('invalid_json', `the body is not valid JSON: ${(err as Error).message}`)
  }
  checkJsonValueLimits(value, 'body', { maxDepth: MAX_BODY_DEPTH, maxBytes: Number.MAX_SAFE_INTEGER })
  return value
}

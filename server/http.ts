// HTTP plumbing over node:http: a reply that finishes exactly once, body reading with a size limit, and an
// SSE writer that sends the frames of one decode step in one write and honours backpressure. Rules kept here
// so handlers need not know them: a client that goes away aborts its reply at once (app.ts tells the reply
// when its connection closes, queued pipelined replies included), and nothing is written after that.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http'
import { HearthError, toHearthError } from '../lib/errors.js'
import { checkJsonValueLimits } from '../lib/json-limits.js'

/** What a handler may read of the request. */
export interface RequestInfo {
  /** upper-case; HEAD is routed as GET (node leaves the body out) */
  method: string
  /** the path without the query */
  url: string
  query: string
  headers: IncomingHttpHeaders
  /** the Host the request names (the authority of an absolute-form target, else the Host header), if any */
  host: string | undefined
  params: string[]
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string }
}

export function errorBody(err: HearthError): ErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } }
}

/** Header lines as node's writeHead takes them: name, value, name, value, ... */
export type HeaderList = OutgoingHttpHeader[]

const SSE_HEADERS: HeaderList = ['Content-Type', 'text/event-stream', 'Cache-Control', 'no-cache', 'X-Accel-Buffering', 'no']

export class Reply {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly info: RequestInfo
  readonly startedAt = performance.now()
  /** headers added to every response (CORS), as a header list */
  readonly extraHeaders: HeaderList
  aborted = false
  finished = false
  /** the reply was sent with `Connection: close`: nothing else is answered on its connection */
  closing = false
  status = 0
  /** the request has a body that has not been read to its end: a reply now must close the connection */
  bodyPending: boolean
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
  #onDone: (() => void)[] = []
  #onFinish: ((reply: Reply) => void) | null

  constructor(req: IncomingMessage, res: ServerResponse, info: RequestInfo, extraHeaders: HeaderList, onFinish: (reply: Reply) => void) {
    this.req = req
    this.res = res
    this.info = info
    this.extraHeaders = extraHeaders
    this.#onFinish = onFinish
    this.bodyPending = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined
  }

  /** Runs `fn` when the client goes away before the reply ends (at once if it already has). */
  onAbort(fn: () => void): void {
    if (this.aborted) fn()
    else if (!this.finished) this.#onAbort.push(fn)
  }

  /** @internal runs `fn` once the reply has ended or was aborted (at once if so already) */
  onDone(fn: () => void): void {
    if (this.finished) fn()
    else this.#onDone.push(fn)
  }

  get open(): boolean {
    return !this.aborted && !this.finished
  }

  /** @internal the connection closed: called by app.ts for every reply of that connection not yet ended */
  abort(): void {
    if (this.aborted || this.finished) return
    this.aborted = true
    for (const fn of this.#onAbort.splice(0)) fn()
    this.#finish(this.status || 499)
  }

  #head(status: number, headers: HeaderList): HeaderList {
    this.status = status
    return this.extraHeaders.length === 0 ? headers : headers.concat(this.extraHeaders)
  }

  /**
   * `closeConnection` ends the connection after this reply; a reply sent before the request's body was read
   * always does, so the rest of that body is never parsed as a request.
   */
  send(status: number, body: string, contentType: string | null, headers: HeaderList = [], closeConnection = false): void {
    if (!this.open) return
    // explicit, so a HEAD reply has GET's length and an HTTP/1.0 client keeps its connection when it asked to
    const list: HeaderList = ['Content-Length', Buffer.byteLength(body)]
    if (contentType) list.push('Content-Type', contentType)
    if (closeConnection || this.bodyPending) {
      this.closing = true
      list.push('Connection', 'close')
    }
    this.res.writeHead(status, this.#head(status, headers.length === 0 ? list : list.concat(headers)))
    this.res.end(body)
    this.#finish(status)
  }

  json(status: number, body: unknown, headers: HeaderList = [], closeConnection = false): void {
    this.send(status, JSON.stringify(body), 'application/json', headers, closeConnection)
  }

  /** `closeConnection` as in send(); a refusal of the request's framing or size (413, 408) always closes */
  error(err: unknown, closeConnection = false): void {
    const e = toHearthError(err)
    const headers: HeaderList = e.status === 429 || e.status === 503 ? ['Retry-After', '1'] : []
    this.json(e.status, errorBody(e), headers, closeConnection || e.code === 'request_too_large' || e.code === 'request_timeout')
  }

  /** Starts a text/event-stream response. */
  sse(): SseWriter {
    return new SseWriter(this)
  }

  /** @internal the SSE writer's head: chunked over HTTP/1.1; over 1.0 node ends the stream by closing */
  sseHead(): void {
    this.res.writeHead(200, this.#head(200, SSE_HEADERS))
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
    for (const fn of this.#onDone.splice(0)) fn()
    const cb = this.#onFinish
    this.#onFinish = null
    cb?.(this)
  }
}

/**
 * Frames written in one synchronous run (one decode step) go out in one write on the next microtask, corked
 * with the head when it is the first. When the write reports backpressure, later frames wait in memory until
 * the response drains, then go out together; end() waits for nothing (node sends what it holds, then the end).
 */
export class SseWriter {
  readonly #reply: Reply
  #pending = ''
  #scheduled = false
  #blocked = false
  #ending = false
  #headSent = false
  readonly #onDrain = () => {
    this.#blocked = false
    if (this.#pending !== '' || this.#ending) this.#flush()
  }

  constructor(reply: Reply) {
    this.#reply = reply
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
    if (!this.#scheduled) this.#flush()
  }

  #flush(): void {
    const reply = this.#reply
    if (!reply.open) return
    const res = reply.res
    const piece = this.#pending
    this.#pending = ''
    res.cork()
    if (!this.#headSent) {
      this.#headSent = true
      reply.sseHead()
    }
    if (this.#ending) {
      // node holds what the socket cannot take yet and sends the end after it
      if (piece !== '') res.end(piece)
      else res.end()
    } else if (piece !== '' && !this.#blocked && !res.write(piece)) {
      this.#blocked = true
      res.once('drain', this.#onDrain)
    }
    res.uncork()
    if (this.#ending) reply.markFinished()
  }
}

/**
 * Reads the whole body, refusing more than `limit` bytes (413). Settles when the body has ended; rejects when
 * the reply ends first (an early refusal, or the client went away).
 */
export function readBody(reply: Reply, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = reply.req
    const tooLarge = () => new HearthError('request_too_large', `the body is larger than the ${limit}-byte limit`)
    const declared = req.headers['content-length']
    // node has checked that it is digits only
    if (declared !== undefined && Number(declared) > limit) {
      reject(tooLarge())
      return
    }
    // node leaves the 100 to hearth (http-server.ts): now the body is wanted
    if (req.httpVersionMinor === 1 && declared !== '0' && /^\s*100-continue\s*$/i.test(req.headers.expect ?? '')) reply.res.writeContinue()
    const parts: Buffer[] = []
    let size = 0
    let settled = false
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) parts.push(chunk)
      else if (!settled) {
        settled = true
        req.off('data', onData)
        reject(tooLarge())
      }
    }
    req.on('data', onData)
    req.once('end', () => {
      reply.bodyPending = false
      if (settled) return
      settled = true
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size))
    })
    reply.onDone(() => {
      if (settled) return
      settled = true
      reject(new HearthError('request_cancelled', 'the reply ended before the body arrived'))
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
  try {
    checkJsonValueLimits(value, '', { maxDepth: MAX_BODY_DEPTH, maxBytes: Number.MAX_SAFE_INTEGER })
  } catch (err) {
    if (!(err instanceof HearthError) || err.param === null) throw err
    // the path to the place can be thousands of characters: name the top-level field, and the path's start
    const field = /^\.?([^.[]*)/.exec(err.param)![1] || null
    const at = err.param.replace(/^\./, '')
    const shown = at.length > 120 ? `${at.slice(0, 120)}...` : at
    throw new HearthError(err.code, err.message.replace(err.param, shown || 'the body'), field)
  }
  return value
}

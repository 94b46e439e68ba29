// node:http as hearth's HTTP engine. llhttp parses, and node does the framing: HTTP/1.0 and 1.1, keep-alive,
// pipelined requests answered in order, chunked bodies, 100-continue, and the refusal of what llhttp cannot
// parse (bad request line, headers or Content-Length, a head past MAX_HEAD_BYTES, a request slower than
// --body-timeout). Node reports those through 'clientError'; this module answers them with OpenAI-shaped errors.
// What node accepts and hearth refuses before routing is checked here too (wireRefusal). Each connection keeps
// its open replies, so a client that goes away aborts all of them at once, pipelined ones still queued included
// (node emits 'close' only on the response in flight).
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { HearthError } from '../lib/errors.js'
import { errorBody, type Reply, type RequestInfo } from './http.js'

/** Header lines per request, Host included; node would only truncate past its own maxHeadersCount. */
export const MAX_HEADERS = 48
/** request line plus header lines */
export const MAX_HEAD_BYTES = 32 * 1024
// after a refusal written to the socket, what the client still sends is read and dropped, so the refusal is
// not lost to a reset, for at most this long
const LINGER_MS = 2000
// a Host value: reg-name or IP literal, and a port
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d*)?$/
const ABSOLUTE_TARGET = /^https?:\/\/([^/?#]*)([^#]*)$/i

export interface HttpServerOptions {
  /** time from a request's first byte to the end of its body (node's requestTimeout) */
  bodyTimeoutMs: number
  /** a keep-alive connection with nothing to do is closed after this long */
  idleTimeoutMs: number
  /**
   * A request node has parsed, with what hearth reads of it; `refusal` when it is refused before routing.
   * Returns its reply, which the connection aborts if it closes before the reply ends.
   */
  onRequest(req: IncomingMessage, res: ServerResponse, info: RequestInfo, refusal: HearthError | null): Reply
  /** a refusal written to the connection directly (node made no request of it), for the log and the metrics */
  onRefused(err: HearthError, method: string | null, target: string | null): void
}

/** What node's 'clientError' carries (llhttp's errors add the bytes and the position) */
type ClientError = NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number; reason?: string }

interface Connection {
  /** replies not yet ended, in arrival order */
  replies: Set<Reply>
  /** the newest request's reply and response */
  last: Reply | null
  /** a refusal was sent or is waiting: the connection ends after it and nothing else is answered */
  refused: boolean
}

function ending(conn: Connection): boolean {
  return conn.refused || conn.last?.closing === true
}

export function createHttpServer(o: HttpServerOptions): Server {
  const connections = new WeakMap<Socket, Connection>()
  const server = createServer(
    {
      // answered in wireRefusal, with a body saying why
      requireHostHeader: false,
      maxHeaderSize: MAX_HEAD_BYTES,
      requestTimeout: o.bodyTimeoutMs,
      headersTimeout: o.bodyTimeoutMs,
      keepAliveTimeout: o.idleTimeoutMs,
      // how often node looks for requests past their time: a fraction of the timeout, so a 408 comes on time
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(o.bodyTimeoutMs / 4))),
      noDelay: true,
    },
    (req, res) => {
      const conn = connections.get(req.socket)
      // after a refusal nothing more is answered on this connection (e.g. a request pipelined behind one refused
      // with 413, or whose head completes after a 408): the connection ends after the refusal
      if (!conn || ending(conn)) return
      const info = requestInfo(req)
      const reply = o.onRequest(req, res, info, wireRefusal(req, info))
      conn.last = reply
      if (reply.open) {
        conn.replies.add(reply)
        reply.onDone(() => conn.replies.delete(reply))
      }
    },
  )
  // node keeps every raw header line (wireRefusal counts them); past this it leaves the rest out of req.headers
  server.maxHeadersCount = MAX_HEADERS + 1
  // Expect other than 100-continue: the request goes through the router's refusal path (wireRefusal).
  // Expect: 100-continue: node would send 100 at once; readBody sends it when the body is wanted, so a request
  // refused first (Host, key, size) is refused before its client sends the body
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
  server.on('connection', (socket: Socket) => {
    const conn: Connection = { replies: new Set(), last: null, refused: false }
    connections.set(socket, conn)
    socket.once('close', () => {
      for (const reply of conn.replies) reply.abort()
      conn.replies.clear()
    })
  })
  server.on('clientError', (err: ClientError, socket: Socket) => {
    const conn = connections.get(socket)
    if (!conn || ending(conn)) return // what the client still sends after a refusal is dropped
    const [method, target, version] = requestLine(err.rawPacket, err.bytesParsed)
    const refusal = clientRefusal(err, method, version, o.bodyTimeoutMs)
    if (refusal === null || !socket.writable || (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0)) {
      // a reset, a request cut off by the client, or a connection that never sent a byte: nothing to answer
      socket.destroy()
      return
    }
    conn.refused = true
    const last = conn.last
    if (last?.open && last.bodyPending) {
      // the request whose body is arriving is the one refused (a stalled or malformed body); its reply
      // answers, closes the connection, and is counted under its route
      if (!last.res.headersSent) last.error(refusal)
      else socket.destroy()
      return
    }
    o.onRefused(refusal, method, target)
    const write = () => {
      socket.end(refusalBytes(refusal))
      setTimeout(() => socket.destroy(), LINGER_MS).unref()
    }
    // after the responses already due on this connection, in order
    if (last && !last.res.writableFinished && !last.res.destroyed) last.res.once('finish', write)
    else write()
  })
  // CONNECT is parsed by node but only answered by a 'connect' listener
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const refusal = new HearthError('method_not_implemented', 'the method CONNECT is not supported')
    o.onRefused(refusal, 'CONNECT', req.url ?? null)
    socket.end(refusalBytes(refusal))
    setTimeout(() => socket.destroy(), LINGER_MS).unref()
  })
  return server
}

/** The path, query and Host of a request; an absolute-form target's authority replaces Host (RFC 9112 3.2.2). */
function requestInfo(req: IncomingMessage): RequestInfo {
  const headers = req.headers
  let target = req.url ?? '/'
  let host = headers.host
  if (target.charCodeAt(0) !== 47 /* / */) {
    const m = ABSOLUTE_TARGET.exec(target)
    if (m) {
      host = m[1]!
      target = m[2] || '/'
      if (target[0] !== '/') target = '/' + target
    }
  }
  // an HTTP/1.0 request may name no Host: it means the address it was sent to
  if (host === undefined && req.httpVersionMinor === 0) {
    const a = req.socket.localAddress ?? 'localhost'
    host = `${a.includes(':') ? `[${a}]` : a}:${req.socket.localPort ?? 0}`
  }
  const q = target.indexOf('?')
  return {
    method: req.method === 'HEAD' ? 'GET' : req.method!,
    url: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
    host,
    params: [],
  }
}

/** What node accepts and hearth refuses before routing, or null. */
function wireRefusal(req: IncomingMessage, info: RequestInfo): HearthError | null {
  if (req.httpVersionMajor !== 1) return new HearthError('http_version_not_supported', `HTTP/${req.httpVersion} is not supported; use HTTP/1.1 or HTTP/1.0`)
  const raw = req.rawHeaders
  if (raw.length > 2 * MAX_HEADERS) return new HearthError('headers_too_large', `the request has ${raw.length / 2} header lines; at most ${MAX_HEADERS} are accepted`)
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++
  if (hosts > 1) return new HearthError('bad_request', 'more than one Host header')
  if (info.url[0] !== '/') return new HearthError('bad_request', 'the request target must be a path starting with /')
  if (info.host === undefined) return new HearthError('bad_request', 'HTTP/1.1 requests need a Host header')
  if (!HOST_VALUE.test(info.host)) return new HearthError('bad_request', 'malformed Host header')
  const te = info.headers['transfer-encoding']
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return new HearthError('bad_request', 'Transfer-Encoding in an HTTP/1.0 request')
    const codings = te.toLowerCase().split(',').map((c) => c.trim())
    // RFC 9112 6.3: without chunked last, the body's end cannot be found
    if (codings.at(-1) !== 'chunked') return new HearthError('bad_request', `Transfer-Encoding ${JSON.stringify(te)} does not end with chunked`)
    if (codings.length > 1) return new HearthError('method_not_implemented', `Transfer-Encoding ${JSON.stringify(te)} is not supported; send chunked or a Content-Length`)
  }
  const expect = info.headers.expect
  if (expect !== undefined && expect.trim().toLowerCase() !== '100-continue') return new HearthError('expectation_failed', `Expect: ${expect} is not supported`)
  return null
}

/** The refusal for an error node reports on a connection, or null when there is nothing to answer. */
function clientRefusal(err: ClientError, method: string | null, version: string | null, bodyTimeoutMs: number): HearthError | null {
  const reason = err.reason ?? err.message
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HearthError('request_timeout', `the request did not arrive in full within ${bodyTimeoutMs / 1000} s (--body-timeout)`)
    case 'HPE_HEADER_OVERFLOW':
      return new HearthError('headers_too_large', `the request head is larger than ${MAX_HEAD_BYTES} bytes`)
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new HearthError('request_too_large', 'the chunk extensions are too large')
    case 'HPE_INVALID_METHOD':
      return new HearthError('method_not_implemented', `the method ${JSON.stringify(method ?? '')} is not an HTTP method hearth serves`)
    case 'HPE_INVALID_VERSION': {
      if (version !== null && version !== '1.0' && version !== '1.1') return new HearthError('http_version_not_supported', `HTTP/${version} is not supported; use HTTP/1.1 or HTTP/1.0`)
      return new HearthError('bad_request', `malformed request: ${reason}`)
    }
    // the client closed with a request half sent, or reset the connection
    case 'HPE_INVALID_EOF_STATE':
    case 'ECONNRESET':
    case 'EPIPE':
      return null
    default:
      return err.code?.startsWith('HPE_') ? new HearthError('bad_request', `malformed request: ${reason}`) : null
  }
}

/**
 * The method, target and version of the request line node stopped in (its error is at `at` in `raw`, the bytes
 * it was parsing), when the error is in a request line; nulls otherwise.
 */
function requestLine(raw: Buffer | undefined, at: number | undefined): [string | null, string | null, string | null] {
  if (!raw) return [null, null, null]
  const pos = Math.min(at ?? 0, raw.length)
  const start = pos > 0 ? raw.lastIndexOf(10, pos - 1) + 1 : 0
  const text = raw.toString('latin1', start, Math.min(raw.length, start + 1024))
  const m = /^([^ \r\n]+) ([^ \r\n]+)(?: HTTP\/(\d+\.\d+))?(?:\r?\n|$)/.exec(text)
  return m ? [m[1]!, m[2]!, m[3] ?? null] : [null, null, null]
}

/** A complete error response for a connection that has no request node made (it ends the connection). */
function refusalBytes(err: HearthError): string {
  const body = JSON.stringify(errorBody(err))
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

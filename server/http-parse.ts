// HTTP/1.x framing for the front (http-front.ts): a strict request-head parser, the request's body framing,
// a chunked-body decoder, and the head of uWS's responses. Pure functions over bytes, no sockets.
//
// Strict on purpose: the front forwards a valid request's head to uWebSockets.js unchanged, so anything uWS
// could read differently (bare LF, folded lines, odd Content-Length, Transfer-Encoding with Content-Length) is
// refused here with a status rather than passed on.
import { HearthError } from '../lib/errors.js'

/** uWS (20.30) parses at most 48 header lines, Host included; more and it stalls without a word. */
export const MAX_HEADERS = 48
/** request line plus header lines, CRLFs included */
export const MAX_HEAD_BYTES = 32 * 1024
/** chunk-size lines and trailer lines of a chunked body */
const MAX_CHUNK_LINE_BYTES = 4096

/** Methods passed on to the router (which answers 404/405); anything else is a 501 here. */
const ROUTED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/
// origin-form targets: visible ASCII only
const TARGET = /^[\x21-\x7e]+$/
// field values: no controls but HTAB (obs-text above 0x7f is allowed, as RFC 9110 does)
const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d*)?$/
const DIGITS = /^\d+$/

export interface RequestHead {
  method: string
  /** origin-form path and query (an absolute-form target is reduced to this) */
  target: string
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minor: 0 | 1
  /** [lower-case name, trimmed value] in arrival order */
  headers: [string, string][]
  /** the Host header, or the authority of an absolute-form target; null when neither */
  host: string | null
  /** the body is chunked (Transfer-Encoding: chunked); otherwise it has `contentLength` bytes */
  chunked: boolean
  contentLength: number
  /** the client keeps the connection for another request (1.1 unless `close`, 1.0 only with `keep-alive`) */
  keepAlive: boolean
  expectContinue: boolean
  /** the head bytes can go to uWS as they came (an HTTP/1.1 origin-form GET/POST/... with Host) */
  verbatim: boolean
}

export function httpError(code: 'bad_request' | 'headers_too_large' | 'method_not_implemented' | 'http_version_not_supported', message: string): HearthError {
  return new HearthError(code, message)
}

/**
 * Where the head at the start of `buf` ends (index just past its blank line), -1 while it is incomplete.
 * Throws for heads that can never become valid: too large (431) or lines ended by a bare LF (400).
 */
export function findHeadEnd(buf: Buffer): number {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1')
  if (end >= 0) {
    if (end + 4 > MAX_HEAD_BYTES) throw httpError('headers_too_large', `the request head is larger than ${MAX_HEAD_BYTES} bytes`)
    return end + 4
  }
  if (buf.length > MAX_HEAD_BYTES) throw httpError('headers_too_large', `the request head is larger than ${MAX_HEAD_BYTES} bytes`)
  for (let lf = buf.indexOf(10); lf >= 0; lf = buf.indexOf(10, lf + 1)) {
    if (lf === 0 || buf[lf - 1] !== 13) throw httpError('bad_request', 'request lines must end with CRLF')
  }
  return -1
}

/** Bytes of empty lines (CRLF) before a request; RFC 9112 2.2 asks servers to skip them. */
export function leadingCrlf(buf: Buffer): number {
  let i = 0
  while (i + 1 < buf.length && buf[i] === 13 && buf[i + 1] === 10) i += 2
  return i
}

/**
 * Parses the head in `buf[0, end)` (`end` from findHeadEnd). Throws HearthError with the status to answer:
 * 400 malformed, 413 body over `bodyLimit`, 431 too many headers, 501 unknown method or transfer coding,
 * 505 an HTTP version other than 1.0/1.1.
 */
export function parseRequestHead(buf: Buffer, end: number, bodyLimit: number): RequestHead {
  const lines = buf.toString('latin1', 0, end - 4).split('\r\n')
  const m = REQUEST_LINE.exec(lines[0]!)
  if (!m) throw httpError('bad_request', 'malformed request line')
  const [, method, rawTarget, major, minorText] = m as unknown as [string, string, string, string, string]
  if (major !== '1' || (minorText !== '0' && minorText !== '1')) throw httpError('http_version_not_supported', `HTTP/${major}.${minorText} is not supported; use HTTP/1.1 or HTTP/1.0`)
  const minor = minorText === '1' ? 1 : 0
  if (!TOKEN.test(method)) throw httpError('bad_request', 'malformed method')
  if (!ROUTED_METHODS.has(method)) throw httpError('method_not_implemented', `the method ${method} is not supported`)
  if (!TARGET.test(rawTarget)) throw httpError('bad_request', 'malformed request target')
  if (lines.length - 1 > MAX_HEADERS) throw httpError('headers_too_large', `the request has ${lines.length - 1} header lines; at most ${MAX_HEADERS} are accepted`)

  const headers: [string, string][] = []
  let host: string | null = null
  let hosts = 0
  let contentLength: string | null = null
  let transferEncoding: string | null = null
  let connection = ''
  let expectContinue = false
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) throw httpError('bad_request', colon === 0 ? 'empty header name' : line[0] === ' ' || line[0] === '\t' ? 'folded header lines are not accepted' : 'malformed header line')
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) throw httpError('bad_request', `malformed header name ${JSON.stringify(name)}`)
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
    if (BAD_VALUE_CHAR.test(value)) throw httpError('bad_request', `a control character in the value of ${name}`)
    const key = name.toLowerCase()
    headers.push([key, value])
    switch (key) {
      case 'host':
        hosts++
        host = value
        break
      case 'content-length':
        if (!DIGITS.test(value)) throw httpError('bad_request', `malformed Content-Length ${JSON.stringify(value)}`)
        if (contentLength !== null && Number(contentLength) !== Number(value)) throw httpError('bad_request', 'two different Content-Length headers')
        contentLength = value
        break
      case 'transfer-encoding':
        if (transferEncoding !== null) throw httpError('bad_request', 'more than one Transfer-Encoding header')
        transferEncoding = value.toLowerCase()
        break
      case 'connection':
        connection += ',' + value.toLowerCase()
        break
      case 'expect':
        if (value.toLowerCase() !== '100-continue') throw new HearthError('expectation_failed', `Expect: ${value} is not supported`)
        expectContinue = minor === 1
        break
    }
  }

  let target = rawTarget
  let absolute = false
  if (!target.startsWith('/')) {
    // absolute-form (RFC 9112 3.2.2): its authority replaces Host
    const url = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target)
    if (!url) throw httpError('bad_request', 'the request target must be a path starting with /')
    host = url[1]!
    hosts = 1
    target = url[2] || '/'
    if (!target.startsWith('/')) target = '/' + target
    absolute = true
  }
  if (hosts > 1) throw httpError('bad_request', 'more than one Host header')
  if (minor === 1 && host === null) throw httpError('bad_request', 'HTTP/1.1 requests need a Host header')
  if (host !== null && !HOST_VALUE.test(host)) throw httpError('bad_request', 'malformed Host header')
  // an HTTP/1.0 request without Host is given one on its way to uWS
  if (headers.length + (host === null ? 1 : 0) > MAX_HEADERS) throw httpError('headers_too_large', `the request has more than ${MAX_HEADERS} header lines`)

  let chunked = false
  if (transferEncoding !== null) {
    if (contentLength !== null) throw httpError('bad_request', 'Content-Length and Transfer-Encoding together')
    if (minor === 0) throw httpError('bad_request', 'Transfer-Encoding in an HTTP/1.0 request')
    if (transferEncoding !== 'chunked') throw httpError('method_not_implemented', `Transfer-Encoding ${JSON.stringify(transferEncoding)} is not supported; send chunked or a Content-Length`)
    chunked = true
  }
  // longer than 15 digits is beyond any limit (and beyond exact doubles)
  const length = contentLength === null ? 0 : contentLength.length > 15 ? Infinity : Number(contentLength)
  if (length > bodyLimit) throw new HearthError('request_too_large', `the body is larger than the ${bodyLimit}-byte limit`)

  const tokens = connection.split(',').map((s) => s.trim())
  const keepAlive = minor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive')
  return {
    method,
    target,
    minor,
    headers,
    host,
    chunked,
    contentLength: length,
    keepAlive,
    expectContinue,
    verbatim: minor === 1 && !absolute && !chunked && !expectContinue && method !== 'HEAD',
  }
}

/**
 * The HTTP/1.1 head uWS is given for a request that cannot go verbatim: version 1.1, HEAD asked as GET (the
 * front drops the body), a chunked body already decoded into `bodyLength` bytes, Host from the target or
 * `fallbackHost`, and without the hop-by-hop fields the front answers itself.
 */
export function rebuildHead(head: RequestHead, bodyLength: number, fallbackHost: string): string {
  const method = head.method === 'HEAD' ? 'GET' : head.method
  let out = `${method} ${head.target} HTTP/1.1\r\nHost: ${head.host ?? fallbackHost}\r\n`
  for (const [k, v] of head.headers) {
    if (k === 'host' || k === 'content-length' || k === 'transfer-encoding' || k === 'expect' || k === 'connection' || k === 'keep-alive') continue
    out += `${k}: ${v}\r\n`
  }
  if (bodyLength > 0 || head.method === 'POST' || head.method === 'PUT' || head.method === 'PATCH') out += `content-length: ${bodyLength}\r\n`
  return out + '\r\n'
}

/**
 * Decodes a chunked body incrementally. `push` consumes bytes from `buf` starting at `at` and returns how many
 * it took; `done` turns true after the last chunk and its trailer section. Data spans go to `onData` (null to
 * only find the end). Throws 400 for malformed framing and 413 past `limit` data bytes.
 */
export class ChunkedDecoder {
  done = false
  received = 0
  readonly #limit: number
  readonly #onData: ((buf: Buffer, start: number, end: number) => void) | null
  // 'size': reading a chunk-size line; 'data': inside a chunk; 'crlf': after a chunk's data; 'trailer': after the last chunk
  #state: 'size' | 'data' | 'crlf' | 'trailer' = 'size'
  #remaining = 0
  #line = ''

  constructor(limit: number, onData: ((buf: Buffer, start: number, end: number) => void) | null) {
    this.#limit = limit
    this.#onData = onData
  }

  push(buf: Buffer, at = 0): number {
    const start = at
    while (at < buf.length && !this.done) {
      if (this.#state === 'data') {
        const n = Math.min(this.#remaining, buf.length - at)
        this.#onData?.(buf, at, at + n)
        at += n
        this.#remaining -= n
        if (this.#remaining === 0) this.#state = 'crlf'
        continue
      }
      const lf = buf.indexOf(10, at)
      const stop = lf < 0 ? buf.length : lf + 1
      this.#line += buf.toString('latin1', at, stop)
      at = stop
      if (this.#line.length > MAX_CHUNK_LINE_BYTES) throw httpError('bad_request', 'a chunk-size or trailer line is too long')
      if (lf < 0) break
      if (!this.#line.endsWith('\r\n')) throw httpError('bad_request', 'chunked framing: lines must end with CRLF')
      const line = this.#line.slice(0, -2)
      this.#line = ''
      if (this.#state === 'crlf') {
        if (line !== '') throw httpError('bad_request', 'chunked framing: chunk data longer than its size')
        this.#state = 'size'
      } else if (this.#state === 'trailer') {
        if (line === '') this.done = true
      } else {
        const m = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/.exec(line)
        if (!m) throw httpError('bad_request', 'chunked framing: malformed chunk size')
        const size = parseInt(m[1]!, 16)
        this.received += size
        if (this.received > this.#limit) throw new HearthError('request_too_large', `the body is larger than the ${this.#limit}-byte limit`)
        if (size === 0) this.#state = 'trailer'
        else {
          this.#remaining = size
          this.#state = 'data'
        }
      }
    }
    return at - start
  }
}

/** What the front needs of a response head from uWS. */
export interface ResponseHead {
  status: number
  /** header lines without the status line, CRLF-joined as they came */
  lines: string[]
  chunked: boolean
  /** null when the body is chunked or absent */
  contentLength: number | null
}

export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n')
  const status = Number(lines[0]!.slice(9, 12))
  let chunked = false
  let contentLength: number | null = null
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    const key = line.slice(0, colon).toLowerCase()
    if (key === 'transfer-encoding') chunked = line.slice(colon + 1).trim().toLowerCase() === 'chunked'
    else if (key === 'content-length') contentLength = Number(line.slice(colon + 1).trim())
  }
  return { status, lines: lines.slice(1), chunked, contentLength: chunked ? null : contentLength }
}

/** Responses that never have a body (RFC 9110 6.4.1). */
export function bodiless(status: number): boolean {
  return (status >= 100 && status < 200) || status === 204 || status === 304
}

// The HTTP/1.x front: a node:net server on the public address in front of uWebSockets.js, which listens on a
// private socket. uWS 20.30 answers nothing to what it cannot parse (HTTP/1.0, no Host, bad Content-Length,
// unknown methods, more than 48 headers), closes a connection that pipelines a request behind one still being
// answered, and cuts slow bodies after 10 s without a status; it cannot be handed a socket either, so the
// only way to answer those is to read every request first. The front:
// - reads each request in full (head and body), refusing malformed, oversized or slow ones itself with an
//   OpenAI-shaped error and `Connection: close`;
// - hands valid requests to uWS one at a time per connection (the head verbatim when it can), so pipelined
//   requests wait their turn and their responses come back in order;
// - relays each response, watching its framing to know where it ends; for HTTP/1.0 clients it removes the
//   chunked coding (an SSE stream then ends when the connection closes) and for HEAD it drops the body.
// Everything past the first request line (routing, CORS, Host and Origin checks, keys) stays in app.ts.
import { createServer, type Server, type Socket } from 'node:net'
import { HearthError, toHearthError } from '../lib/errors.js'
import { errorBody, statusLine } from './http.js'
import { ChunkedDecoder, findHeadEnd, leadingCrlf, parseRequestHead, rebuildHead, type RequestHead } from './http-parse.js'
import { ResponseRelay } from './http-relay.js'

export interface FrontOptions {
  bodyLimit: number
  /** time from a request's first byte to the end of its body */
  bodyTimeoutMs: number
  /** a keep-alive connection with nothing to do is closed after this long */
  idleTimeoutMs: number
  /** a new connection to uWS's private socket */
  connectUpstream: () => Socket
  /** every request the front answers itself, for the log and the metrics */
  onRefused?: (err: HearthError, method: string | null, target: string | null) => void
}

export interface Front {
  readonly server: Server
  /** stops accepting; each connection closes once it has nothing to answer */
  close(): void
  /** ends every connection now */
  destroyAll(): void
}

// a pipelining client's complete requests are held until their turn; past this many, or this many bytes, the
// connection stops reading until some are answered
const MAX_QUEUED = 16
const MAX_QUEUED_BYTES = 1024 * 1024
// below uWS's 10 s keep-alive timeout, so a request is never written into a socket uWS is closing
const UPSTREAM_IDLE_MS = 4000
// after a refusal the connection reads and drops what the client still sends, so the error is not lost to a
// reset, for at most this long
const LINGER_MS = 2000
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1')

export function errorResponse(err: HearthError): Buffer {
  const body = JSON.stringify(errorBody(err))
  return Buffer.from(
    `HTTP/1.1 ${statusLine(err.status)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    'utf8',
  )
}

export function startFront(options: FrontOptions): Front {
  const connections = new Set<FrontConnection>()
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const c = new FrontConnection(socket, options, () => connections.delete(c))
    connections.add(c)
  })
  return {
    server,
    close: () => {
      server.close()
      for (const c of connections) c.closeWhenIdle()
    },
    destroyAll: () => {
      for (const c of connections) c.destroy()
    },
  }
}

interface Forward {
  kind: 'forward'
  head: RequestHead
  data: Buffer[]
}
interface Local {
  kind: 'local'
  bytes: Buffer
  close: boolean
}
type Exchange = Forward | Local

/** A request whose head has arrived and whose body is still coming. */
interface Receiving {
  head: RequestHead
  headBytes: Buffer
  parts: Buffer[]
  /** bytes still due under Content-Length (unused when chunked) */
  remaining: number
  decoder: ChunkedDecoder | null
  continueSent: boolean
}

class FrontConnection {
  readonly #client: Socket
  readonly #o: FrontOptions
  readonly #onGone: () => void
  #buf: Buffer | null = null
  #receiving: Receiving | null = null
  #queue: Exchange[] = []
  #queuedBytes = 0
  #inflight: Forward | null = null
  #relay: ResponseRelay | null = null
  #upstream: Socket | null = null
  /** a response that closes the connection is queued: whatever else arrives is dropped */
  #closing = false
  /** the server is shutting down: close as soon as nothing is due */
  #draining = false
  #finished = false
  #clientEnded = false
  #timer: NodeJS.Timeout | null = null
  #paused = false
  #waitingDrain = false

  constructor(client: Socket, o: FrontOptions, onGone: () => void) {
    this.#client = client
    this.#o = o
    this.#onGone = onGone
    client.setTimeout(o.idleTimeoutMs)
    client.on('data', (d: Buffer) => this.#onData(d))
    client.on('end', () => this.#onEnd())
    client.on('timeout', () => {
      if (this.#idle()) client.destroy()
    })
    client.on('error', () => undefined) // 'close' follows
    client.on('close', () => this.#teardown())
  }

  closeWhenIdle(): void {
    this.#draining = true
    if (this.#idle()) this.#client.destroy()
  }

  destroy(): void {
    this.#client.destroy()
  }

  #idle(): boolean {
    return !this.#inflight && this.#queue.length === 0 && !this.#receiving && !this.#buf
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return
    try {
      this.#parse(chunk)
    } catch (err) {
      this.#refuse(err)
    }
    this.#dispatch()
  }

  #parse(chunk: Buffer): void {
    let buf: Buffer | null = chunk
    while (buf && !this.#closing) {
      if (this.#receiving) {
        buf = this.#feedBody(buf)
        continue
      }
      if (this.#buf) {
        buf = Buffer.concat([this.#buf, buf])
        this.#buf = null
      }
      const skip = leadingCrlf(buf)
      if (skip > 0) {
        buf = skip < buf.length ? buf.subarray(skip) : null
        continue
      }
      const end = findHeadEnd(buf)
      if (end < 0) {
        this.#buf = buf
        break
      }
      const head = parseRequestHead(buf, end, this.#o.bodyLimit)
      this.#receiving = {
        head,
        headBytes: buf.subarray(0, end),
        parts: [],
        remaining: head.contentLength,
        decoder: null,
        continueSent: false,
      }
      if (head.chunked) {
        const r = this.#receiving
        r.decoder = new ChunkedDecoder(this.#o.bodyLimit, (b, s, e) => r.parts.push(b.subarray(s, e)))
      }
      buf = end < buf.length ? buf.subarray(end) : null
      if (!buf && !this.#bodyDone(this.#receiving)) break
      if (!buf) this.#feedBody(Buffer.alloc(0))
    }
    if (this.#receiving && this.#receiving.head.expectContinue && this.#idleUpstream()) this.#sendContinue(this.#receiving)
    this.#updateTimer()
    if ((this.#queue.length >= MAX_QUEUED || this.#queuedBytes >= MAX_QUEUED_BYTES) && !this.#paused) {
      this.#paused = true
      this.#client.pause()
      this.#updateTimer()
    }
  }

  #bodyDone(r: Receiving): boolean {
    return r.decoder ? r.decoder.done : r.remaining === 0
  }

  /** Takes body bytes from the front of `buf`; returns what is left after the body (the next request). */
  #feedBody(buf: Buffer): Buffer | null {
    const r = this.#receiving!
    let used: number
    if (r.decoder) used = r.decoder.push(buf)
    else {
      used = Math.min(r.remaining, buf.length)
      if (used > 0) r.parts.push(used === buf.length ? buf : buf.subarray(0, used))
      r.remaining -= used
    }
    if (this.#bodyDone(r)) {
      this.#receiving = null
      this.#clearTimer()
      const data = this.#upstreamBytes(r)
      for (const b of data) this.#queuedBytes += b.length
      this.#queue.push({ kind: 'forward', head: r.head, data })
      if (!r.head.keepAlive) this.#closing = true
    }
    return used < buf.length ? buf.subarray(used) : null
  }

  #upstreamBytes(r: Receiving): Buffer[] {
    if (r.head.verbatim) return [r.headBytes, ...r.parts]
    const bodyLength = r.parts.reduce((n, p) => n + p.length, 0)
    return [Buffer.from(rebuildHead(r.head, bodyLength, this.#localHost()), 'latin1'), ...r.parts]
  }

  /** The address the client connected to, as a Host value, for HTTP/1.0 requests that name none. */
  #localHost(): string {
    const a = this.#client.localAddress ?? 'localhost'
    return `${a.includes(':') ? `[${a}]` : a}:${this.#client.localPort ?? 0}`
  }

  #idleUpstream(): boolean {
    return !this.#inflight && this.#queue.length === 0
  }

  #sendContinue(r: Receiving): void {
    if (r.continueSent || this.#bodyDone(r)) return
    r.continueSent = true
    this.#client.write(CONTINUE)
  }

  #updateTimer(): void {
    const r = this.#receiving
    // a client that asked for 100 Continue waits for it before sending the body: its clock starts then
    const partial = (r !== null && (!r.head.expectContinue || r.continueSent)) || this.#buf !== null
    if (!partial || this.#paused) this.#clearTimer()
    else this.#timer ??= setTimeout(() => this.#onTimeout(), this.#o.bodyTimeoutMs)
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  #onTimeout(): void {
    this.#timer = null
    if (this.#closing || (!this.#receiving && !this.#buf)) return
    const s = this.#o.bodyTimeoutMs / 1000
    this.#refuse(new HearthError('request_timeout', `the request did not arrive in full within ${s} s (--body-timeout)`))
    this.#dispatch()
  }

  /** Queues an error response that closes the connection, after the responses already due. */
  #refuse(err: unknown): void {
    const e = toHearthError(err)
    const head = this.#receiving?.head
    this.#o.onRefused?.(e, head?.method ?? null, head?.target ?? null)
    this.#receiving = null
    this.#buf = null
    this.#clearTimer()
    this.#closing = true
    this.#queue.push({ kind: 'local', bytes: errorResponse(e), close: true })
  }

  #dispatch(): void {
    while (!this.#inflight && this.#queue.length > 0 && !this.#client.destroyed) {
      const ex = this.#queue.shift()!
      if (ex.kind === 'local') {
        this.#client.write(ex.bytes)
        if (ex.close) {
          this.#finish()
          return
        }
      } else {
        for (const b of ex.data) this.#queuedBytes -= b.length
        this.#forward(ex)
      }
    }
    if (this.#idleUpstream()) {
      if (this.#receiving?.head.expectContinue) {
        this.#sendContinue(this.#receiving)
        this.#updateTimer()
      }
      if (this.#clientEnded || this.#closing || (this.#draining && this.#idle())) this.#finish()
    }
    if (this.#paused && this.#queue.length < MAX_QUEUED / 2 && this.#queuedBytes < MAX_QUEUED_BYTES / 2) {
      this.#paused = false
      this.#client.resume()
      this.#updateTimer()
    }
  }

  #forward(ex: Forward): void {
    this.#inflight = ex
    const head = ex.head
    this.#relay = new ResponseRelay(head.minor === 0, head.method === 'HEAD', head.keepAlive, (b) => this.#client.write(b))
    const up = this.#ensureUpstream()
    if (ex.data.length === 1) up.write(ex.data[0]!)
    else {
      up.cork()
      for (const b of ex.data) up.write(b)
      up.uncork()
    }
  }

  #ensureUpstream(): Socket {
    if (this.#upstream) return this.#upstream
    const up = this.#o.connectUpstream()
    up.setTimeout(UPSTREAM_IDLE_MS)
    up.on('timeout', () => {
      if (this.#upstream === up && !this.#inflight) {
        this.#upstream = null
        up.destroy()
      }
    })
    up.on('data', (d: Buffer) => this.#onUpstreamData(up, d))
    // uWS closes after a response it sent with closeConnection: that socket takes no further request
    up.on('end', () => {
      if (this.#upstream === up && !this.#inflight) this.#upstream = null
    })
    up.on('error', () => undefined) // 'close' follows
    up.on('close', () => this.#onUpstreamClose(up))
    this.#upstream = up
    return up
  }

  #onUpstreamData(up: Socket, chunk: Buffer): void {
    const relay = this.#relay
    if (up !== this.#upstream || !relay) {
      up.destroy()
      return
    }
    try {
      relay.push(chunk)
    } catch {
      // uWS wrote something that is not one HTTP/1.1 response: nothing sensible can follow
      this.#client.destroy()
      return
    }
    if (relay.done) {
      const ex = this.#inflight!
      this.#inflight = null
      this.#relay = null
      if (relay.mustClose || !ex.head.keepAlive) this.#finish()
      else this.#dispatch()
    } else if (this.#client.writableNeedDrain && !this.#waitingDrain) {
      // a slow reader: stop reading from uWS, which then sees backpressure and holds its writes
      this.#waitingDrain = true
      up.pause()
      this.#client.once('drain', () => {
        this.#waitingDrain = false
        up.resume()
      })
    }
  }

  #onUpstreamClose(up: Socket): void {
    if (this.#upstream !== up) return
    this.#upstream = null
    if (!this.#inflight) return
    const started = this.#relay?.started ?? false
    this.#inflight = null
    this.#relay = null
    if (started) this.#client.destroy()
    else {
      this.#queue.unshift({ kind: 'local', bytes: errorResponse(new HearthError('internal_error', 'the request ended without a response')), close: true })
      this.#closing = true
      this.#dispatch()
    }
  }

  /** Ends the connection once everything written has gone, dropping anything the client still sends. */
  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#closing = true
    this.#clearTimer()
    this.#queue = []
    this.#queuedBytes = 0
    if (this.#upstream && !this.#inflight) {
      this.#upstream.destroy()
      this.#upstream = null
    }
    if (this.#paused) this.#client.resume()
    this.#client.end()
    setTimeout(() => this.#client.destroy(), LINGER_MS).unref()
  }

  #teardown(): void {
    this.#clearTimer()
    this.#queue = []
    this.#queuedBytes = 0
    this.#inflight = null
    this.#relay = null
    // uWS sees the close as an abort and cancels the request's generation
    this.#upstream?.destroy()
    this.#upstream = null
    this.#onGone()
  }

  #onEnd(): void {
    this.#clientEnded = true
    // a request cut off by the client's FIN can never complete
    if (this.#receiving || this.#buf) {
      this.#receiving = null
      this.#buf = null
      this.#clearTimer()
    }
    if (this.#idleUpstream()) this.#finish()
  }
}

// The response half of the front (http-front.ts): one uWS response passed on to the client, with its end found
// from its framing so the next pipelined request can go.
import { bodiless, ChunkedDecoder, parseResponseHead } from './http-parse.js'

const CRLF2 = Buffer.from('\r\n\r\n', 'latin1')

/**
 * Passes one uWS response to the client and finds where it ends. HTTP/1.1 clients get the bytes as they come;
 * HTTP/1.0 clients get a head without chunked coding and the decoded body (close-delimited when the length is
 * not known); HEAD requests (asked of uWS as GET) get the head only.
 */
export class ResponseRelay {
  done = false
  /** some of the response has gone to the client */
  started = false
  /** the connection must close after this response */
  mustClose = false
  readonly #http10: boolean
  readonly #headOnly: boolean
  readonly #keepAlive: boolean
  readonly #write: (b: Buffer) => void
  #pendingHead: Buffer | null = null
  #headDone = false
  #remaining = 0
  #decoder: ChunkedDecoder | null = null

  constructor(http10: boolean, headOnly: boolean, keepAlive: boolean, write: (b: Buffer) => void) {
    this.#http10 = http10
    this.#headOnly = headOnly
    this.#keepAlive = keepAlive
    this.#write = write
  }

  push(chunk: Buffer): void {
    let at = 0
    if (!this.#headDone) {
      const buf: Buffer = this.#pendingHead ? Buffer.concat([this.#pendingHead, chunk]) : chunk
      const i = buf.indexOf(CRLF2)
      if (i < 0) {
        this.#pendingHead = buf
        return
      }
      this.#pendingHead = null
      this.#headDone = true
      chunk = buf
      at = i + 4
      this.#startBody(buf, i)
    }
    if (this.#decoder) at += this.#decoder.push(chunk, at)
    else {
      const n = Math.min(this.#remaining, chunk.length - at)
      if (n > 0 && this.#http10 && !this.#headOnly) this.#write(chunk.subarray(at, at + n))
      this.#remaining -= n
      at += n
    }
    if (at < chunk.length) throw new Error('bytes after the end of a uWS response')
    this.done = this.#decoder ? this.#decoder.done : this.#remaining === 0
    // HTTP/1.1: head and body go on as they came, one write per chunk
    if (!this.#http10 && !this.#headOnly) {
      this.#write(chunk)
      this.started = true
    }
  }

  /** Reads the head ending at `headEnd` in `buf`; writes it now unless it goes with the body as it came. */
  #startBody(buf: Buffer, headEnd: number): void {
    const head = parseResponseHead(buf.toString('latin1', 0, headEnd))
    if (head.status < 200) throw new Error('interim response from uWS')
    if (bodiless(head.status)) this.#remaining = 0
    else if (head.chunked) {
      const dechunk = this.#http10 && !this.#headOnly
      this.#decoder = new ChunkedDecoder(Infinity, dechunk ? (b, s, e) => this.#write(b.subarray(s, e)) : null)
    } else this.#remaining = head.contentLength ?? 0
    if (this.#http10) {
      // the length of a chunked body is not known up front: it ends with the connection
      const close = !this.#keepAlive || head.chunked
      this.mustClose = close
      const lines = head.lines.filter((l) => !/^(connection|keep-alive|transfer-encoding):/i.test(l))
      const status = buf.toString('latin1', 0, buf.indexOf('\r\n'))
      this.#write(Buffer.from([status, ...lines, `Connection: ${close ? 'close' : 'keep-alive'}`].join('\r\n') + '\r\n\r\n', 'latin1'))
      this.started = true
    } else if (this.#headOnly) {
      this.#write(buf.subarray(0, headEnd + 4))
      this.started = true
    }
  }
}

// A raw-socket HTTP/1.1 load generator: many keep-alive connections, each with several requests in flight
// (pipelining), counting complete responses. Node's fetch or http client would cap out long before a fast
// server does on a 2-core machine; here each response costs an indexOf and a slice.
import { connect, type Socket } from 'node:net'

export interface LoadOptions {
  host: string
  port: number
  path: string
  connections: number
  /** requests kept in flight per connection */
  depth: number
  seconds: number
}

export interface LoadResult {
  responses: number
  errors: number
  /** connections the server closed that had to be reopened */
  reconnects: number
  seconds: number
  requestsPerSecond: number
}

const HEADER_END = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')

/** Bytes of one complete response at the start of `buf` and its status, or null when it is not all there yet. */
function completeResponse(buf: Buffer): { bytes: number; status: number } | null {
  const headEnd = buf.indexOf(HEADER_END)
  if (headEnd < 0) return null
  const head = buf.toString('latin1', 0, headEnd).toLowerCase()
  const status = Number(head.slice(9, 12))
  const bodyStart = headEnd + 4
  const length = /\r\ncontent-length:\s*(\d+)/.exec(head)
  if (length) {
    const end = bodyStart + Number(length[1])
    return buf.length >= end ? { bytes: end, status } : null
  }
  if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
    let at = bodyStart
    for (;;) {
      const lineEnd = buf.indexOf(CRLF, at)
      if (lineEnd < 0) return null
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16)
      const next = lineEnd + 2 + size + 2
      if (buf.length < next) return null
      at = next
      if (size === 0) return { bytes: at, status }
    }
  }
  return { bytes: bodyStart, status }
}

export function pipelinedLoad(o: LoadOptions): Promise<LoadResult> {
  const request = Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nConnection: keep-alive\r\n\r\n`)
  const batch = (n: number) => (n === 1 ? request : Buffer.concat(Array<Buffer>(n).fill(request)))
  let responses = 0
  let errors = 0
  let reconnects = 0
  let running = true
  const sockets = new Set<Socket>()

  const open = (): void => {
    const socket = connect({ host: o.host, port: o.port, noDelay: true })
    sockets.add(socket)
    let pending: Buffer = Buffer.alloc(0)
    socket.on('connect', () => socket.write(batch(o.depth)))
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
      let done = 0
      for (;;) {
        const r = completeResponse(pending)
        if (!r) break
        pending = pending.subarray(r.bytes)
        done++
        if (r.status === 200) responses++
        else errors++
      }
      if (done > 0 && running) socket.write(batch(done))
    })
    // requests lost with a closed connection are not counted; the new connection refills the pipeline
    socket.on('close', () => {
      sockets.delete(socket)
      if (running) {
        reconnects++
        open()
      }
    })
    socket.on('error', () => {
      if (running) errors++
    })
  }

  return new Promise((resolve) => {
    const t0 = performance.now()
    for (let i = 0; i < o.connections; i++) open()
    setTimeout(() => {
      running = false
      const seconds = (performance.now() - t0) / 1000
      for (const s of sockets) s.destroy()
      resolve({ responses, errors, reconnects, seconds, requestsPerSecond: responses / seconds })
    }, o.seconds * 1000)
  })
}

// Sends one fuzz case over a fresh connection with node:http (which lets the client walk away mid-upload or
// after any number of response bytes) and records what came back, however broken.
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { bodyBytes, type FuzzCase } from './fuzz-case.js'

export interface Outcome {
  /** null when no response head arrived */
  status: number | null
  headers: Record<string, string>
  body: Buffer
  /** the response arrived whole (not cut short by our abort, an error or the timeout) */
  complete: boolean
  /** the network error, when there was one and we did not cause it */
  error: string | null
  timedOut: boolean
  ms: number
}

export function send(baseUrl: string, c: FuzzCase, timeoutMs: number): Promise<Outcome> {
  const url = new URL(baseUrl)
  const body = bodyBytes(c)
  const headers: Record<string, string | number> = { ...c.headers }
  if (c.contentType !== null) headers['content-type'] = c.contentType
  if (body) headers['content-length'] = body.length
  const started = performance.now()
  return new Promise((resolve) => {
    const out: Outcome = { status: null, headers: {}, body: Buffer.alloc(0), complete: false, error: null, timedOut: false, ms: 0 }
    const parts: Buffer[] = []
    let received = 0
    let settled = false
    let timer: NodeJS.Timeout | undefined
    let req: ClientRequest | undefined
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      out.body = Buffer.concat(parts)
      out.ms = performance.now() - started
      resolve(out)
    }
    const walkAway = () => {
      finish()
      req?.destroy()
    }
    const onResponse = (res: IncomingMessage) => {
      out.status = res.statusCode ?? null
      for (const [k, v] of Object.entries(res.headers)) out.headers[k] = Array.isArray(v) ? v.join(', ') : String(v ?? '')
      const abortAt = c.abort?.at === 'after-bytes' ? c.abort.bytes : Infinity
      if (abortAt === 0) return walkAway()
      res.on('data', (chunk: Buffer) => {
        if (settled) return
        parts.push(chunk)
        received += chunk.length
        if (received >= abortAt) walkAway()
      })
      // the outcome is handed over once: nothing may change it after that (walking away ends the response later)
      res.on('end', () => {
        if (settled) return
        out.complete = true
        finish()
      })
      res.on('error', (err) => {
        if (settled) return
        out.error = err.message
        finish()
      })
    }
    try {
      req = request({ host: url.hostname, port: url.port, method: c.method, path: c.path, headers, agent: false }, onResponse)
    } catch (err) {
      // node refuses to send it (a path or header it will not write): nothing reached the server
      out.error = `the client could not send this request: ${(err as Error).message}`
      return finish()
    }
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      out.error = `${err.code ?? ''} ${err.message}`.trim()
      finish()
    })
    timer = setTimeout(() => {
      out.timedOut = true
      walkAway()
    }, timeoutMs)
    if (c.abort?.at === 'mid-body' && body && body.length > 1) {
      req.write(body.subarray(0, body.length >> 1), () => walkAway())
      return
    }
    req.end(body ?? undefined)
    if (c.abort?.at === 'after-send') req.on('finish', () => setImmediate(walkAway))
  })
}

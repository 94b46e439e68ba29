// A streaming OpenAI client over node:http that timestamps every content chunk as it arrives. fetch() would
// add its own buffering and per-chunk promise hops, which on a 2-core machine blur time-between-tokens.
import { Agent, request } from 'node:http'

export interface StreamOutcome {
  /** performance.now() when the request was handed to the socket */
  sentAt: number
  /** arrival time of every chunk that carried generated text */
  tokenTimes: number[]
  /** arrival of the chunk with finish_reason (the first token's time when it had no text of its own) */
  finishAt: number
  endAt: number
  text: string
  promptTokens: number
  completionTokens: number
  /** prompt tokens the server reused from its cache, when it reports them */
  cachedTokens: number | null
  finishReason: string | null
}

interface Usage {
  prompt_tokens?: number
  completion_tokens?: number
  prompt_tokens_details?: { cached_tokens?: number } | null
}

interface StreamChunk {
  choices?: { text?: string | null; delta?: { content?: string | null }; finish_reason?: string | null }[]
  usage?: Usage | null
  error?: unknown
}

export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 })
}

export interface StreamControl {
  /** called on every chunk that carried text, with the number of such chunks so far */
  onText?: (count: number) => void
  /** hangs up: the request resolves with what arrived until then (no usage, no finish) */
  stop?: AbortSignal
}

/** POSTs `body` with stream: true and include_usage, and resolves once [DONE] arrives (or `control.stop` fires). */
export async function streamRequest(
  agent: Agent, baseUrl: string, path: string, body: Record<string, unknown>, control: StreamControl = {},
): Promise<StreamOutcome> {
  const payload = Buffer.from(JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }))
  try {
    return await attempt(agent, new URL(path, baseUrl), payload, control)
  } catch (err) {
    // llama-server (cpp-httplib) closes a keep-alive connection whose request outlived its 5 s keep-alive
    // timeout, and the close can land just after the agent handed the socket to the next request. That
    // request never reached the server, so sending it again is safe: on a new connection of its own, since
    // every other idle socket in the pool may have been closed the same way.
    if (err instanceof StaleSocketError) return attempt(false, new URL(path, baseUrl), payload, control)
    throw err
  }
}

class StaleSocketError extends Error {}

function attempt(agent: Agent | false, url: URL, payload: Buffer, control: StreamControl): Promise<StreamOutcome> {
  const path = url.pathname
  return new Promise((resolve, reject) => {
    const out: StreamOutcome = {
      sentAt: 0, tokenTimes: [], finishAt: 0, endAt: 0, text: '', promptTokens: 0, completionTokens: 0, cachedTokens: null, finishReason: null,
    }
    let usageSeen = false
    let done = false
    let pending = ''
    const req = request(
      { agent, hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, Accept: 'text/event-stream' } },
      (res) => {
        res.setEncoding('utf8')
        if (res.statusCode !== 200) {
          let text = ''
          res.on('data', (s: string) => (text += s))
          res.on('end', () => reject(new Error(`${path}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`)))
          return
        }
        res.on('data', (s: string) => {
          const now = performance.now()
          pending += s
          let cut: number
          while ((cut = pending.indexOf('\n\n')) >= 0) {
            const event = pending.slice(0, cut)
            pending = pending.slice(cut + 2)
            for (const line of event.split('\n')) {
              if (line.startsWith('error:')) return fail(new Error(`${path}: stream error ${line.slice(6).trim()}`))
              if (!line.startsWith('data:')) continue
              const data = line.slice(5).trim()
              if (data === '[DONE]') {
                done = true
                continue
              }
              const chunk = JSON.parse(data) as StreamChunk
              if (chunk.error) return fail(new Error(`${path}: stream error ${JSON.stringify(chunk.error)}`))
              const choice = chunk.choices?.[0]
              const text = choice?.text ?? choice?.delta?.content ?? ''
              if (text) {
                out.tokenTimes.push(now)
                out.text += text
                control.onText?.(out.tokenTimes.length)
              }
              if (choice?.finish_reason) {
                out.finishReason = choice.finish_reason
                out.finishAt = now
              }
              if (chunk.usage) {
                usageSeen = true
                out.promptTokens = chunk.usage.prompt_tokens ?? 0
                out.completionTokens = chunk.usage.completion_tokens ?? 0
                out.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? null
              }
            }
          }
        })
        res.on('end', () => {
          out.endAt = performance.now()
          if (!done) return fail(new Error(`${path}: the stream ended without [DONE]`))
          if (!usageSeen) return fail(new Error(`${path}: the stream carried no usage chunk`))
          resolve(out)
        })
        res.on('error', fail)
      },
    )
    function fail(err: Error): void {
      req.destroy()
      reject(err)
    }
    if (control.stop) {
      const stop = control.stop
      const hangUp = () => {
        if (done) return
        done = true
        out.endAt = performance.now()
        req.destroy()
        resolve(out)
      }
      if (stop.aborted) return hangUp()
      stop.addEventListener('abort', hangUp, { once: true })
    }
    let responded = false
    req.on('response', () => (responded = true))
    req.on('error', (err: NodeJS.ErrnoException) => {
      const stale = !responded && req.reusedSocket && (err.code === 'ECONNRESET' || err.message === 'socket hang up')
      reject(stale ? new StaleSocketError(err.message) : err)
    })
    out.sentAt = performance.now()
    req.end(payload)
  })
}

/** Throws unless the server generated exactly `expected` tokens (ignore_eos must hold on both servers). */
export function expectTokens(o: StreamOutcome, expected: number, who: string): void {
  if (o.completionTokens !== expected) {
    throw new Error(`${who}: generated ${o.completionTokens} tokens, expected ${expected} (finish_reason ${o.finishReason})`)
  }
  if (o.finishReason !== 'length') throw new Error(`${who}: finish_reason ${o.finishReason}, expected length`)
}

/**
 * When the first token reached the client. A token can carry no text of its own (a byte of a character
 * still incomplete), so without any text chunk the finish chunk stands in; with max_tokens 1 it is that token.
 */
export function firstTokenAt(o: StreamOutcome): number {
  return o.tokenTimes[0] ?? o.finishAt
}

/** When the last token reached the client (see firstTokenAt). */
export function lastTokenAt(o: StreamOutcome): number {
  return o.tokenTimes.length > 0 ? o.tokenTimes[o.tokenTimes.length - 1]! : o.finishAt
}

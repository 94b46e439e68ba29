// The soak benchmark's client: one streamed OpenAI request over a keep-alive agent that may walk away after a
// number of text chunks, and says how it ended (finished, walked away, or which error). Unlike
// stream-client.ts it times nothing: the soak counts requests, tokens and errors.
import { request, type Agent } from 'node:http'

export interface SoakOutcome {
  /** finished with [DONE] and a usage chunk, or walked away on purpose */
  ok: boolean
  aborted: boolean
  completionTokens: number
  /** what went wrong, e.g. "HTTP 503", "stream error kv_cache_full", "ECONNRESET" */
  error: string | null
}

class StaleSocket extends Error {}

/** POSTs `body` with stream and include_usage; walks away after `abortAfterChunks` text chunks when set. */
export async function soakRequest(agent: Agent, baseUrl: string, path: string, body: Record<string, unknown>, abortAfterChunks: number | null, timeoutMs: number): Promise<SoakOutcome> {
  const payload = Buffer.from(JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }))
  const url = new URL(path, baseUrl)
  try {
    return await attempt(agent, url, payload, abortAfterChunks, timeoutMs)
  } catch (err) {
    // a keep-alive connection the server closed just as it was reused (see stream-client.ts): the request
    // never reached the server, so it goes again on a connection of its own
    if (err instanceof StaleSocket) return attempt(false, url, payload, abortAfterChunks, timeoutMs).catch((e: Error) => failed(e.message))
    return failed((err as Error).message)
  }
}

const failed = (error: string): SoakOutcome => ({ ok: false, aborted: false, completionTokens: 0, error })

function attempt(agent: Agent | false, url: URL, payload: Buffer, abortAfterChunks: number | null, timeoutMs: number): Promise<SoakOutcome> {
  return new Promise((resolve, reject) => {
    let chunks = 0
    let done = false
    let usage: number | null = null
    let pending = ''
    let settled = false
    let responded = false
    const settle = (o: SoakOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(o)
    }
    const req = request(
      { agent, hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, Accept: 'text/event-stream' } },
      (res) => {
        responded = true
        res.setEncoding('utf8')
        if (res.statusCode !== 200) {
          let text = ''
          res.on('data', (s: string) => (text += s))
          res.on('end', () => settle(failed(`HTTP ${res.statusCode} ${/"code":"([^"]+)"/.exec(text)?.[1] ?? ''}`.trim())))
          return
        }
        res.on('data', (s: string) => {
          pending += s
          let cut: number
          while ((cut = pending.indexOf('\n\n')) >= 0) {
            const event = pending.slice(0, cut)
            pending = pending.slice(cut + 2)
            for (const line of event.split('\n')) {
              if (!line.startsWith('data:')) continue
              const data = line.slice(5).trim()
              if (data === '[DONE]') {
                done = true
                continue
              }
              const chunk = JSON.parse(data) as { error?: { code?: string }; choices?: { text?: string; delta?: { content?: string } }[]; usage?: { completion_tokens?: number } | null }
              if (chunk.error) {
                req.destroy()
                return settle(failed(`stream error ${chunk.error.code ?? JSON.stringify(chunk.error)}`))
              }
              const c = chunk.choices?.[0]
              if (c?.text || c?.delta?.content) chunks++
              if (chunk.usage) usage = chunk.usage.completion_tokens ?? 0
              if (abortAfterChunks !== null && chunks >= abortAfterChunks) {
                req.destroy()
                return settle({ ok: true, aborted: true, completionTokens: chunks, error: null })
              }
            }
          }
        })
        res.on('end', () => {
          if (!done) return settle(failed('the stream ended without [DONE]'))
          if (usage === null) return settle(failed('no usage chunk'))
          settle({ ok: true, aborted: false, completionTokens: usage, error: null })
        })
        res.on('error', (err) => settle(failed(err.message)))
      },
    )
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      const stale = !responded && req.reusedSocket && (err.code === 'ECONNRESET' || err.message === 'socket hang up')
      if (stale) {
        settled = true
        clearTimeout(timer)
        reject(new StaleSocket(err.message))
      } else settle(failed(err.code ?? err.message))
    })
    const timer = setTimeout(() => {
      req.destroy()
      settle(failed(`no answer within ${timeoutMs / 1000} s`))
    }, timeoutMs)
    req.end(payload)
  })
}

// Starts the real CLI (`node bin/hearth.js serve`) on a free port of 127.0.0.1 and gives the official
// `openai` client pointed at it. The server is stopped with SIGTERM when the test ends, and the test checks
// that it drained and exited cleanly. Every server gets a temporary data folder (HEARTH_DATA_DIR), so tests
// never write into the real home folder.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import type { Test } from 'tap'
import { packageRoot } from '../lib/native.js'

export interface TestServer {
  url: string
  baseURL: string
  client: OpenAI
  proc: ChildProcess
  output: () => string
  /** its data folder: `env.HEARTH_DATA_DIR` when given, else a temporary one removed when the test ends */
  dataDir: string
  /** Sends `signal` and waits for the exit; the test's teardown then leaves this server alone. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** A temporary folder, removed when the test ends. */
export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export async function startTestServer(t: Test, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const dataDir = env.HEARTH_DATA_DIR ?? tempDir(t)
  const proc = spawn(process.execPath, [join(packageRoot, 'bin', 'hearth.js'), 'serve', '--port', '0', '--threads', '1', '--ctx', '256', ...args], {
    env: { ...process.env, HEARTH_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30000)
    const check = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    proc.stdout!.on('data', check)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${out}`))
    })
  })
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${url}/health`).catch(() => null)
    if (r?.status === 200) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  let stopped = false
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    stopped = true
    proc.kill(signal)
    return exited
  }
  t.teardown(async () => {
    if (stopped) return
    const { code } = await stop('SIGTERM')
    if (code !== 0) throw new Error(`the server exited with ${code} after SIGTERM:\n${out}`)
  })
  const baseURL = `${url}/v1`
  const apiKeyArg = args.indexOf('--api-key')
  const client = new OpenAI({ baseURL, apiKey: apiKeyArg >= 0 ? args[apiKeyArg + 1]! : 'unused', maxRetries: 0, timeout: 60000 })
  return { url, baseURL, client, proc, output: () => out, dataDir, stop }
}

/** POSTs raw bytes or JSON and returns status, headers and the parsed JSON body (or text). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  })
  const text = await r.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch {
    // not JSON: callers look at text
  }
  return { status: r.status, headers: r.headers, json, text }
}

/** Parses an SSE body into its events. */
export function sseEvents(text: string): { event: string | null; data: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event: string | null = null
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      return { event, data: data.join('\n') }
    })
}

/** The error a promise rejects with (fails loudly when it resolves). */
export async function failure(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

/** One HTTP response as read off a raw socket; `body` is de-chunked, `raw` is every byte as sent. */
export interface RawResponse {
  statusLine: string
  status: number
  /** lower-case names; a repeated header keeps its last value */
  headers: Record<string, string>
  body: string
  chunked: boolean
  raw: string
}

/**
 * The complete responses at the start of `text` (latin1), and how much of it they take. A body with neither
 * Content-Length nor chunked coding ends with the connection, so it is complete only once `closed`.
 */
export function parseRawResponses(text: string, closed: boolean): { responses: RawResponse[]; used: number } {
  const responses: RawResponse[] = []
  let at = 0
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', at)
    if (headEnd < 0) break
    const lines = text.slice(at, headEnd).split('\r\n')
    const statusLine = lines[0]!
    const status = Number(statusLine.slice(9, 12))
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':')
      headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim()
    }
    let end: number
    let body = ''
    const chunked = headers['transfer-encoding']?.toLowerCase() === 'chunked'
    if (status < 200 || status === 204 || status === 304) end = headEnd + 4
    else if (chunked) {
      let p = headEnd + 4
      let complete = false
      for (;;) {
        const lineEnd = text.indexOf('\r\n', p)
        if (lineEnd < 0) break
        const size = parseInt(text.slice(p, lineEnd), 16)
        if (text.length < lineEnd + 2 + size + 2) break
        body += text.slice(lineEnd + 2, lineEnd + 2 + size)
        p = lineEnd + 2 + size + 2
        if (size === 0) {
          complete = true
          break
        }
      }
      if (!complete) break
      end = p
    } else if (headers['content-length'] !== undefined) {
      end = headEnd + 4 + Number(headers['content-length'])
      if (text.length < end) break
      body = text.slice(headEnd + 4, end)
    } else {
      if (!closed) break
      end = text.length
      body = text.slice(headEnd + 4)
    }
    responses.push({ statusLine, status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), chunked, raw: text.slice(at, end) })
    at = end
  }
  return { responses, used: at }
}

/**
 * A client connection that speaks raw bytes (node:net), for what fetch and the SDK never send: HTTP/1.0,
 * pipelining, malformed heads, stalled bodies, a reader that stops reading.
 */
export class RawConnection {
  readonly socket: Socket
  /** resolves when the server has closed the connection (or it broke) */
  readonly closed: Promise<void>
  isClosed = false
  #text = ''
  #waiters: (() => void)[] = []

  constructor(url: string) {
    const u = new URL(url)
    this.socket = connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''))
    this.socket.on('data', (d: Buffer) => {
      this.#text += d.toString('latin1')
      this.#wake()
    })
    this.socket.on('error', () => undefined)
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.isClosed = true
        this.#wake()
        resolve()
      }),
    )
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
  }

  /** every byte received so far, as latin1 text */
  get text(): string {
    return this.#text
  }

  /** Waits until `n` complete responses have arrived (fewer when the server closes first). */
  async responses(n: number): Promise<RawResponse[]> {
    for (;;) {
      const { responses } = parseRawResponses(this.#text, this.isClosed)
      if (responses.length >= n || this.isClosed) return responses
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  /** Waits until the bytes received so far satisfy `pred` (or the server closes). */
  async until(pred: (text: string) => boolean): Promise<void> {
    while (!pred(this.#text) && !this.isClosed) await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  /** Waits for the server to close, then returns every response. */
  async untilClosed(): Promise<RawResponse[]> {
    await this.closed
    return parseRawResponses(this.#text, true).responses
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Sends `data` on a fresh connection and returns the first `n` responses and whether the server closed. */
export async function rawExchange(url: string, data: string | Buffer, n = 1): Promise<{ responses: RawResponse[]; closed: boolean; conn: RawConnection }> {
  const conn = new RawConnection(url)
  conn.write(data)
  const responses = await conn.responses(n)
  return { responses, closed: conn.isClosed, conn }
}

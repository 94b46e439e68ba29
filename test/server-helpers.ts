// Starts the real CLI (`node bin/hearth.js serve`) on a free port of 127.0.0.1 and gives the official
// `openai` client pointed at it. The server is stopped with SIGTERM when the test ends, and the test checks
// that it drained and exited cleanly. Every server gets a temporary data folder (HEARTH_DATA_DIR), so tests
// never write into the real home folder.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
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

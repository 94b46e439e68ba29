// The server under fuzz: the real CLI (`bin/hearth.js serve`) as a child process on a free port, watched for
// exits, restarted after a crash, and stopped with SIGTERM at the end (which must drain and exit 0).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageRoot } from '../../lib/native.js'

export interface ServerExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface FuzzServer {
  url: string
  pid: number
  /** resolves when the process exits, however */
  exited: Promise<ServerExit>
  exit: ServerExit | null
  /** the last 16 kB it printed */
  logTail(): string
  /** bytes printed so far; with outputSince, what a request made it print */
  outputBytes(): number
  /** what it printed after `mark` (an outputBytes() value), as far as the last 16 kB reach */
  outputSince(mark: number): string
  /** SIGTERM, then how it exited (SIGKILL after `graceMs`) */
  stop(graceMs?: number): Promise<ServerExit>
}

const LOG_KEEP = 16_384
const live = new Set<() => void>()
process.on('exit', () => {
  for (const kill of live) kill()
})

export async function startFuzzServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<FuzzServer> {
  // its own data folder (stored responses), never the user's; removed when the server exits
  const dataDir = env.HEARTH_DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), 'hearth-fuzz-')) : null
  const proc = spawn(process.execPath, [join(packageRoot, 'bin', 'hearth.js'), 'serve', '--port', '0', ...args], {
    env: { ...process.env, ...(dataDir ? { HEARTH_DATA_DIR: dataDir } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (dataDir) proc.once('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  const kill = () => proc.kill('SIGKILL')
  live.add(kill)
  let log = ''
  let total = 0
  const onOutput = (b: Buffer) => {
    const s = b.toString('utf8')
    total += s.length
    log = (log + s).slice(-LOG_KEEP)
  }
  proc.stdout.on('data', onOutput)
  proc.stderr.on('data', onOutput)
  let exit: ServerExit | null = null
  const exited = new Promise<ServerExit>((resolve) =>
    proc.once('exit', (code, signal) => {
      exit = { code, signal }
      live.delete(kill)
      resolve(exit)
    }),
  )
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${log}`)), 60_000)
    const check = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    proc.stdout.on('data', check)
    void exited.then((e) => {
      clearTimeout(timer)
      reject(new Error(`the server exited (${e.signal ?? e.code}) before listening:\n${log}`))
    })
  })
  // the model loads after the port opens; /health says when
  for (;;) {
    if (exit) throw new Error(`the server exited while loading:\n${log}`)
    const status = await fetch(`${url}/health`).then((r) => r.status, () => 0)
    if (status === 200) break
    if (status !== 503 && status !== 0) throw new Error(`/health answered ${status} while loading:\n${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    pid: proc.pid!,
    exited,
    get exit() {
      return exit
    },
    logTail: () => log,
    outputBytes: () => total,
    outputSince: (mark) => log.slice(Math.max(0, log.length - (total - mark))),
    async stop(graceMs = 30_000) {
      if (exit) return exit
      proc.kill('SIGTERM')
      const timer = setTimeout(kill, graceMs)
      const e = await exited
      clearTimeout(timer)
      return e
    },
  }
}

// Starts hearth or llama-server as a child process with the same settings expressed in each one's flags, waits
// for /health, and stops it. Also reads the child's CPU time and peak memory from /proc, which is how the
// HTTP-overhead scenario charges work to the server and not to the load generator.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { hearthCli } from './paths.js'

export type ServerKind = 'hearth' | 'llama-server'
export const SERVER_KINDS: readonly ServerKind[] = ['hearth', 'llama-server']

export interface ServerSettings {
  model: string
  threads: number
  /** sequences decoded together (llama-server: slots) */
  parallel: number
  /** tokens one sequence may hold, prompt and output */
  ctxPerSeq: number
  /** KV cells in all */
  kvSize: number
  batch: number
  ubatch: number
  promptCache: boolean
  /**
   * 'unified' (the default): one KV pool on both (llama-server --kv-unified), each slot capped at ctxPerSeq, both
   * at batch/ubatch: the like-for-like layout. 'defaults': each server as its users run it for this slot count:
   * llama-server with -np and -c only (its default for an explicit -np is a KV stream per slot, --cache-ram 8 GiB,
   * its own -b/-ub), hearth with its automatic layout and RAM cache.
   */
  layout?: 'unified' | 'defaults'
  /** a vision projector (mmproj GGUF) loaded with the model, on both servers */
  mmproj?: string
}

export interface RunningServer {
  kind: ServerKind
  url: string
  pid: number
  /** user + system CPU time of the whole process (all threads) so far, in microseconds */
  cpuMicros(): number
  /** peak resident memory so far (VmHWM), in bytes */
  peakRssBytes(): number
  /** the last lines the server printed, for error messages */
  logTail(): string
  stop(): Promise<void>
}

// /proc/<pid>/stat counts in clock ticks; 100 per second on every Linux Node supports
const TICK_MICROS = 1e6 / 100
const LOG_KEEP = 16_384
const live = new Set<ChildProcess>()

// a benchmark that crashes must not leave servers running on the shared machine
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of live) child.kill('SIGKILL')
    process.exit(130)
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

function hearthArgs(s: ServerSettings, cli = hearthCli): string[] {
  // hearth has no ubatch flag: it uses min(batch, 512), which the settings check enforces
  return [
    cli, 'serve', '--model', s.model, '--host', '127.0.0.1', '--port', '0',
    '--threads', String(s.threads), '--parallel', String(s.parallel), '--ctx', String(s.ctxPerSeq),
    '--kv-size', String(s.kvSize), '--max-queue', '4096', '--quiet', '--responses-db', ':memory:',
    ...(s.promptCache ? [] : ['--no-prompt-cache']),
    ...((s.layout ?? 'unified') === 'unified' ? ['--kv-layout', 'unified', '--batch', String(s.batch)] : []),
    ...(s.mmproj ? ['--mmproj', s.mmproj] : []),
  ]
}

function llamaArgs(s: ServerSettings, port: number): string[] {
  return [
    '-m', s.model, '--host', '127.0.0.1', '--port', String(port),
    '-t', String(s.threads), '-tb', String(s.threads), '-np', String(s.parallel), '-c', String(s.kvSize),
    ...((s.layout ?? 'unified') === 'unified'
      ? // unified KV of kvSize cells with each slot capped at ctxPerSeq: hearth's --kv-size and --ctx
        ['--kv-unified', '--kv-unified-per-slot', String(s.ctxPerSeq), '-b', String(s.batch), '-ub', String(s.ubatch)]
      : []),
    '-fa', 'auto',
    // --fit would be free to change unset parameters; everything that matters is set, keep it that way
    '--fit', 'off', '--no-webui',
    ...(s.promptCache ? [] : ['--no-cache-prompt', '--cache-ram', '0']),
    // its encoder runs on the same -t threads as hearth's (--threads); a CPU build has nothing to offload
    ...(s.mmproj ? ['--mmproj', s.mmproj] : []),
  ]
}

function readStat(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the command name may contain spaces and parentheses: fields start after the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** `cli`: the bin/hearth.js to run, another build's to compare builds (bench/http-builds.ts) */
export async function startServer(kind: ServerKind, s: ServerSettings, llamaServerBin: string, cli = hearthCli): Promise<RunningServer> {
  if (kind === 'hearth' && s.ubatch !== Math.min(s.batch, 512)) throw new Error('hearth always uses ubatch = min(batch, 512)')
  const port = kind === 'llama-server' ? await freePort() : 0
  const child =
    kind === 'hearth'
      ? spawn(process.execPath, hearthArgs(s, cli), { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(llamaServerBin, llamaArgs(s, port), { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let log = ''
  let exited: string | null = null
  const onOutput = (b: Buffer) => {
    log = (log + b.toString('utf8')).slice(-LOG_KEEP)
  }
  child.stdout!.on('data', onOutput)
  child.stderr!.on('data', onOutput)
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ?? `exit code ${code}`
      live.delete(child)
      resolve()
    })
  })
  child.once('error', (err) => {
    exited = err.message
  })
  const fail = (why: string) => {
    child.kill('SIGKILL')
    return new Error(`${kind} ${why}\n--- its output ---\n${log.slice(-4000)}`)
  }

  const deadline = Date.now() + 300_000
  let url = kind === 'llama-server' ? `http://127.0.0.1:${port}` : ''
  for (;;) {
    if (exited !== null) throw fail(`exited before it was ready (${exited})`)
    if (Date.now() > deadline) throw fail('was not ready within 300 s')
    if (!url) {
      const m = /listening on (http:\/\/[^\s]+)/.exec(log)
      if (m) url = m[1]!
    }
    if (url) {
      const status = await fetch(`${url}/health`).then((r) => r.status, () => 0)
      if (status === 200) break
    }
    await new Promise((r) => setTimeout(r, 100))
  }

  const pid = child.pid!
  return {
    kind,
    url,
    pid,
    cpuMicros() {
      const f = readStat(pid)
      return (Number(f[11]) + Number(f[12])) * TICK_MICROS
    },
    peakRssBytes() {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      return m ? Number(m[1]) * 1024 : NaN
    },
    logTail: () => log,
    async stop() {
      if (exited !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(timer)
    },
  }
}

/** The flags each server gets for these settings, for the result file. */
export function serverCommandLines(s: ServerSettings): Record<ServerKind, string> {
  return {
    hearth: ['node', ...hearthArgs(s)].join(' ').replace(hearthCli, 'bin/hearth.js'),
    'llama-server': ['llama-server', ...llamaArgs(s, 0)].join(' '),
  }
}

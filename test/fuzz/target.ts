// The server under fuzz as the runner and the minimiser see it: sends a case and says whether the process
// died while it was in flight, restarts it after a crash, and waits for it to go idle (the leak check).
import type { FuzzCase } from './fuzz-case.js'
import { send, type Outcome } from './http-client.js'
import { startFuzzServer, type FuzzServer, type ServerExit } from './server-process.js'

export interface Sent {
  outcome: Outcome
  /** set when the server exited while this case was in flight */
  crash: { exit: ServerExit; log: string } | null
}

export interface Idle {
  ok: boolean
  active: number
  queued: number
}

export class FuzzTarget {
  readonly args: string[]
  readonly timeoutMs: number
  restarts = 0
  #server: FuzzServer | null = null
  #starting: Promise<FuzzServer> | null = null
  /** cases in flight, with how much the server had printed when each was sent */
  readonly #inflight = new Map<FuzzCase, number>()
  /** cases in flight when the server last exited, with how it exited */
  readonly #suspects = new Map<FuzzCase, { exit: ServerExit; log: string }>()
  #lastLog = ''
  /** processes stopped on purpose: their exit is no crash */
  readonly #stopping = new WeakSet<FuzzServer>()
  /** exits with no case in flight (a crash after an answer was complete), not yet reported */
  #orphanExits: { exit: ServerExit; log: string }[] = []

  constructor(args: string[], timeoutMs: number) {
    this.args = args
    this.timeoutMs = timeoutMs
  }

  get url(): string {
    if (!this.#server) throw new Error('the server is not running')
    return this.#server.url
  }

  /** The running server, started (again) if needed; concurrent callers share one start. */
  async server(): Promise<FuzzServer> {
    if (this.#server && !this.#server.exit) return this.#server
    this.#starting ??= (async () => {
      if (this.#server) this.restarts++
      const s = await startFuzzServer(this.args)
      const mark = s.outputBytes()
      void s.exited.then((exit) => {
        if (this.#stopping.has(s)) return
        for (const [c, at] of this.#inflight) this.#suspects.set(c, { exit, log: s.outputSince(at) })
        if (this.#inflight.size === 0) this.#orphanExits.push({ exit, log: s.outputSince(mark) })
      })
      this.#server = s
      this.#starting = null
      return s
    })()
    return this.#starting
  }

  /** A fresh process, for replaying a case alone. */
  async restart(): Promise<void> {
    if (this.#server) {
      this.#stopping.add(this.#server)
      await this.#server.stop(5000)
    }
    await this.server()
  }

  /** Exits that happened while no case was in flight, since the last call. */
  takeOrphanExits(): { exit: ServerExit; log: string }[] {
    return this.#orphanExits.splice(0)
  }

  async send(c: FuzzCase): Promise<Sent> {
    const server = await this.server()
    this.#inflight.set(c, server.outputBytes())
    const outcome = await send(server.url, c, this.timeoutMs)
    // a process that is going down may not have been reaped yet: wait until it has exited or answers again
    if (outcome.status === null || outcome.error || (outcome.status ?? 0) >= 500 || c.abort) await this.#settle(server)
    this.#inflight.delete(c)
    const crash = this.#suspects.get(c) ?? null
    this.#suspects.delete(c)
    return { outcome, crash }
  }

  async #settle(server: FuzzServer): Promise<void> {
    const answers = (async () => {
      for (let i = 0; i < 200 && !server.exit; i++) {
        if ((await fetch(`${server.url}/health`).then((r) => r.status, () => 0)) === 200) return
        await new Promise((r) => setTimeout(r, 25))
      }
    })()
    await Promise.race([server.exited, answers])
  }

  /** Polls /metrics until no sequence is active or queued, for at most `boundMs`. */
  async idle(boundMs: number): Promise<Idle> {
    const server = await this.server()
    const deadline = performance.now() + boundMs
    let last: Idle = { ok: false, active: -1, queued: -1 }
    for (;;) {
      const text = await fetch(`${server.url}/metrics`).then((r) => r.text(), () => '')
      const active = Number(/^hearth_sequences_active (\d+)/m.exec(text)?.[1] ?? NaN)
      const queued = Number(/^hearth_sequences_queued (\d+)/m.exec(text)?.[1] ?? NaN)
      last = { ok: active === 0 && queued === 0, active, queued }
      if (last.ok || performance.now() > deadline || server.exit) return last
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** SIGTERM; the exit must be clean (code 0). Returns how it exited, or null if it was not running. */
  async stop(): Promise<ServerExit | null> {
    const s = this.#server
    this.#server = null
    if (!s || s.exit) return null
    this.#stopping.add(s)
    const exit = await s.stop()
    this.#lastLog = s.logTail()
    return exit
  }

  /** the running server's last output, or the last stopped one's */
  logTail(): string {
    return this.#server?.logTail() ?? this.#lastLog
  }
}

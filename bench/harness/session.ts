// The alternation every scenario follows: round 1 hearth, round 1 llama-server, round 2 hearth, ... with a
// fresh server process for each turn, so slow drift of a shared machine (other jobs, thermal state) lands on
// both servers alike and no turn inherits the previous one's caches. Scenarios made of single requests
// interleave finer still: both servers run side by side and requests alternate between them.
import type { Agent } from 'node:http'
import { nextSeed } from './prompts.js'
import { SERVER_KINDS, startServer, type RunningServer, type ServerKind, type ServerSettings } from './servers.js'
import { expectTokens, keepAliveAgent, streamRequest } from './stream-client.js'

/** Both servers' defaults, sent explicitly so a changed default can't skew a comparison. */
export const SAMPLING = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 } as const

export function completionBody(prompt: number[] | string, maxTokens: number): Record<string, unknown> {
  return { prompt, max_tokens: maxTokens, ...SAMPLING, seed: nextSeed(), ignore_eos: true }
}

export function log(scenario: string, msg: string): void {
  const t = new Date().toISOString().slice(11, 19)
  process.stderr.write(`[${t} ${scenario}] ${msg}\n`)
}

export interface Turn {
  kind: ServerKind
  round: number
  server: RunningServer
  agent: Agent
}

/** A failed turn's error, with which server and round, and the tail of that server's output. */
function turnError(turn: Turn, err: unknown): Error {
  return new Error(`${turn.kind}, round ${turn.round + 1}: ${(err as Error).message}\n--- ${turn.kind} output ---\n${turn.server.logTail().slice(-3000)}`)
}

/** A short request that pages in the weights and builds the compute graphs before anything is timed. */
export async function warmUp(turn: Turn, prompt: number[]): Promise<void> {
  const o = await streamRequest(turn.agent, turn.server.url, '/v1/completions', completionBody(prompt, 4))
  expectTokens(o, 4, `${turn.kind} warm-up`)
}

export async function alternate(
  scenario: string,
  rounds: number,
  settings: ServerSettings,
  llamaServer: string,
  body: (turn: Turn) => Promise<void>,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    for (const kind of SERVER_KINDS) {
      log(scenario, `round ${round + 1}/${rounds}: starting ${kind}`)
      const server = await startServer(kind, settings, llamaServer)
      const turn: Turn = { kind, round, server, agent: keepAliveAgent() }
      try {
        await body(turn)
      } catch (err) {
        throw turnError(turn, err)
      } finally {
        turn.agent.destroy()
        await server.stop()
      }
    }
  }
}

/**
 * Both servers side by side for each round (fresh processes, warmed up), and `reps` requests that alternate
 * between them, in swapped order on every repetition. On a machine whose speed drifts within seconds,
 * neighbouring samples see the same conditions; only one server works at a time.
 */
export async function interleave(
  scenario: string,
  rounds: number,
  reps: number,
  settings: ServerSettings,
  llamaServer: string,
  warm: (turn: Turn) => Promise<void>,
  body: (turn: Turn, rep: number) => Promise<void>,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    log(scenario, `round ${round + 1}/${rounds}: starting both servers`)
    const turns: Turn[] = []
    try {
      for (const kind of SERVER_KINDS) {
        turns.push({ kind, round, server: await startServer(kind, settings, llamaServer), agent: keepAliveAgent() })
      }
      for (const turn of turns) await warm(turn)
      for (let rep = 0; rep < reps; rep++) {
        const order = rep % 2 === 0 ? turns : [...turns].reverse()
        for (const turn of order) {
          try {
            await body(turn, rep)
          } catch (err) {
            throw turnError(turn, err)
          }
        }
      }
    } finally {
      for (const turn of turns) {
        turn.agent.destroy()
        await turn.server.stop()
      }
    }
  }
}

// Compares builds of hearth on what the HTTP layer costs (scenario 5's measurements on the built-in tiny model,
// plus keep-alive GETs without pipelining), with llama-server beside them. Each round runs every build and then
// llama-server, a fresh process per turn, so a drifting shared machine lands on all alike; the table shows
// medians over the rounds. For changes to the HTTP layer: give it the build before and the build after.
//   node dist/bench/http-builds.js --build before=/tmp/old/bin/hearth.js --build after=bin/hearth.js
//       [--rounds 6] [--threads N] [--llama-server PATH | --no-llama-server] [--out DIR]
// A build is a checkout with its own dist/ and build/Release/hearth.node; its bin/hearth.js must take the
// flags bench/harness/servers.ts passes (wrap an older one that lacks some).
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { inspectModel } from './harness/model-info.js'
import { defaultLlamaServer, resultsDir, tinyModelPath } from './harness/paths.js'
import { pipelinedLoad } from './harness/pipelined-load.js'
import { startServer, type ServerSettings } from './harness/servers.js'
import { completionBody, log, warmUp, type Turn } from './harness/session.js'
import { median, sum } from './harness/stats.js'
import { expectTokens, keepAliveAgent, streamRequest } from './harness/stream-client.js'

const NAME = 'http-builds'
const { values } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '6' },
    threads: { type: 'string' },
    'llama-server': { type: 'string', default: defaultLlamaServer },
    'no-llama-server': { type: 'boolean', default: false },
    out: { type: 'string', default: resultsDir },
  },
})
const builds = values.build.map((b) => {
  const eq = b.indexOf('=')
  if (eq <= 0) throw new Error(`--build takes LABEL=PATH/bin/hearth.js, got ${b}`)
  return { label: b.slice(0, eq), cli: resolve(b.slice(eq + 1)) }
})
if (builds.length === 0) throw new Error('give at least one --build LABEL=PATH/bin/hearth.js')
const rounds = Number(values.rounds)
const threads = values.threads ? Number(values.threads) : availableParallelism()
const { info: model, prompts } = inspectModel(tinyModelPath)
const genTokens = 200
const streamCounts = [64, 8]
const loads = [
  { key: 'models_keepalive', label: 'GET /v1/models, 32 keep-alive connections, one request at a time', depth: 1 },
  { key: 'models_pipelined', label: 'GET /v1/models, 32 connections x 8 pipelined', depth: 8 },
]
const settings: ServerSettings = {
  model: tinyModelPath, threads, parallel: 64, ctxPerSeq: 256, kvSize: 256 * 64, batch: 512, ubatch: 512, promptCache: true,
}

interface Metric {
  key: string
  label: string
  unit: string
}
const metrics: Metric[] = [
  ...streamCounts.map((n) => ({ key: `s${n}_cpu_us_per_token`, label: `${n} streams x ${genTokens} tokens: server CPU per streamed token`, unit: 'µs' })),
  ...loads.flatMap((l) => [
    { key: `${l.key}_req_s`, label: l.label, unit: 'req/s' },
    { key: `${l.key}_cpu_us_per_req`, label: `${l.label}: server CPU per request`, unit: 'µs' },
  ]),
]
const contenders = [...builds.map((b) => ({ label: b.label, kind: 'hearth' as const, cli: b.cli })), ...(values['no-llama-server'] ? [] : [{ label: 'llama-server', kind: 'llama-server' as const, cli: '' }])]
const samples: Record<string, Record<string, number[]>> = Object.fromEntries(contenders.map((c) => [c.label, {}]))
const add = (label: string, key: string, v: number) => (samples[label]![key] ??= []).push(v)

for (let round = 0; round < rounds; round++) {
  for (const c of contenders) {
    log(NAME, `round ${round + 1}/${rounds}: ${c.label}`)
    const server = await startServer(c.kind, settings, values['llama-server'], c.cli || undefined)
    const turn: Turn = { kind: c.kind, round, server, agent: keepAliveAgent() }
    try {
      await warmUp(turn, prompts.next(16))
      for (const n of streamCounts) {
        const bodies = Array.from({ length: n }, () => completionBody(prompts.next(16), genTokens))
        const cpu0 = server.cpuMicros()
        const results = await Promise.all(bodies.map((b) => streamRequest(turn.agent, server.url, '/v1/completions', b)))
        const cpu = server.cpuMicros() - cpu0
        for (const r of results) expectTokens(r, genTokens, c.label)
        add(c.label, `s${n}_cpu_us_per_token`, cpu / sum(results.map((r) => r.completionTokens)))
      }
      const url = new URL(server.url)
      for (const l of loads) {
        const cpu0 = server.cpuMicros()
        const r = await pipelinedLoad({ host: url.hostname, port: Number(url.port), path: '/v1/models', connections: 32, depth: l.depth, seconds: 5 })
        const cpu = server.cpuMicros() - cpu0
        if (r.responses === 0 || r.errors > 0) throw new Error(`${l.label}: ${r.responses} responses, ${r.errors} errors`)
        add(c.label, `${l.key}_req_s`, r.requestsPerSecond)
        add(c.label, `${l.key}_cpu_us_per_req`, cpu / r.responses)
      }
      log(NAME, `${c.label}: ${metrics.map((m) => `${m.key} ${samples[c.label]![m.key]!.at(-1)!.toFixed(1)}`).join(', ')}`)
    } catch (err) {
      throw new Error(`${c.label}, round ${round + 1}: ${(err as Error).message}\n--- output ---\n${server.logTail().slice(-3000)}`)
    } finally {
      turn.agent.destroy()
      await server.stop()
    }
  }
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1))
const rows = metrics.map((m) => `| ${m.label} (${m.unit}) | ${contenders.map((c) => fmt(median(samples[c.label]![m.key]!))).join(' | ')} |`)
const table = [`| metric, median of ${rounds} rounds | ${contenders.map((c) => c.label).join(' | ')} |`, `| --- |${contenders.map(() => ' ---: |').join('')}`, ...rows].join('\n')
console.log(table)
mkdirSync(values.out, { recursive: true })
const file = join(values.out, `${NAME}.json`)
writeFileSync(file, JSON.stringify({ model, settings: { ...settings, model: model.file, genTokens, rounds }, builds, metrics, samples, table }, null, 2) + '\n')
log(NAME, `wrote ${file}`)

// Scenario 5, HTTP/SSE overhead on the built-in 2.6M-parameter model, where the model costs almost nothing and
// the server's own per-token work (scheduling, detokenizing, JSON, SSE framing, socket writes) dominates:
//  - 64 streams x 200 tokens at once (parallel 64): server CPU microseconds per streamed token, read from
//    /proc/<pid>/stat before and after, and the wall time; then the same with 8 streams on the same server;
//  - GET /v1/models from a raw-socket keep-alive load generator with pipelining: requests per second.
//   node dist/bench/scenarios/http-overhead.js [options]   (see --help; --levels N sets the stream count)
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveTinyModel } from '../harness/options.js'
import { pipelinedLoad } from '../harness/pipelined-load.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { alternate, completionBody, log, warmUp, type Turn } from '../harness/session.js'
import { sum } from '../harness/stats.js'
import { expectTokens, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'http-overhead'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = resolveTinyModel(o)
const { info: model, prompts } = inspectModel(modelPath)
const streams = o.levels?.[0] ?? (o.quick ? 16 : 64)
// At 64 streams the model's work per token grows with the 64 sequences' shared KV cache and hides the serving
// cost; with a few streams each decode step is cheap and the per-step costs around it show.
const fewStreams = Math.min(8, streams)
const streamCounts = fewStreams < streams ? [streams, fewStreams] : [streams]
const genTokens = o.genTokens ?? (o.quick ? 100 : 200)
const promptTokens = o.promptTokens ?? 16
// the tiny model's trained context
const ctxPerSeq = 256
if (promptTokens + genTokens > ctxPerSeq) throw new Error(`prompt + generated tokens must fit in ${ctxPerSeq}`)
const load = { connections: 32, depth: 8, seconds: o.quick ? 2 : 5 }
const settings: ServerSettings = {
  model: modelPath, threads: o.threads, parallel: streams, ctxPerSeq, kvSize: ctxPerSeq * streams, batch: 512, ubatch: 512, promptCache: true,
}

const samples = emptySamples()
const loadNotes: string[] = []
/** One batch of `n` streams started at once; server CPU per token, wall time and rate go into `samples`. */
async function streamBatch(turn: Turn, n: number): Promise<void> {
  const bodies = Array.from({ length: n }, () => completionBody(prompts.next(promptTokens), genTokens))
  const cpu0 = turn.server.cpuMicros()
  const t0 = performance.now()
  const results = await Promise.all(bodies.map((b) => streamRequest(turn.agent, turn.server.url, '/v1/completions', b)))
  const wall = performance.now() - t0
  const cpu = turn.server.cpuMicros() - cpu0
  for (const r of results) expectTokens(r, genTokens, turn.kind)
  const tokens = sum(results.map((r) => r.completionTokens))
  addSample(samples, turn.kind, `s${n}_cpu_us_per_token`, cpu / tokens)
  addSample(samples, turn.kind, `s${n}_wall_ms`, wall)
  addSample(samples, turn.kind, `s${n}_tok_s`, (tokens / wall) * 1000)
  log(SCENARIO, `${turn.kind}: ${n} x ${genTokens} tokens in ${(wall / 1000).toFixed(2)} s, server CPU ${(cpu / 1e6).toFixed(2)} s = ` +
    `${(cpu / tokens).toFixed(1)} us/token`)
}

await alternate(SCENARIO, o.rounds, settings, o.llamaServer, async (turn) => {
  await warmUp(turn, prompts.next(16))
  for (const n of streamCounts) await streamBatch(turn, n)

  const url = new URL(turn.server.url)
  const cpuA = turn.server.cpuMicros()
  const l = await pipelinedLoad({ host: url.hostname, port: Number(url.port), path: '/v1/models', ...load })
  const cpuB = turn.server.cpuMicros() - cpuA
  if (l.responses === 0) throw new Error(`GET /v1/models: no successful response (${l.errors} errors)`)
  addSample(samples, turn.kind, 'models_req_s', l.requestsPerSecond)
  addSample(samples, turn.kind, 'models_cpu_us_per_req', cpuB / l.responses)
  if (l.errors || l.reconnects) loadNotes.push(`${turn.kind} round ${turn.round + 1}: ${l.errors} errors, ${l.reconnects} connections closed by the server and reopened`)
  log(SCENARIO, `${turn.kind}: GET /v1/models ${l.requestsPerSecond.toFixed(0)} req/s (${l.responses} responses, ${l.errors} errors, ${l.reconnects} reconnects)`)
})

const metricInfo: MetricInfo[] = streamCounts.flatMap((n): MetricInfo[] => [
  { key: `s${n}_cpu_us_per_token`, label: `${n} streams x ${genTokens} tokens: server CPU per streamed token`, unit: 'µs', better: 'lower' },
  { key: `s${n}_wall_ms`, label: `${n} streams x ${genTokens} tokens: wall time`, unit: 'ms', better: 'lower' },
  { key: `s${n}_tok_s`, label: `${n} streams: aggregate streamed`, unit: 'tok/s', better: 'higher' },
])
metricInfo.push(
  { key: 'models_req_s', label: `GET /v1/models, ${load.connections} connections x ${load.depth} pipelined`, unit: 'req/s', better: 'higher' },
  { key: 'models_cpu_us_per_req', label: 'GET /v1/models: server CPU per request', unit: 'µs', better: 'lower' },
)
const result = buildResult({
  scenario: SCENARIO,
  title: '5. HTTP/SSE overhead (tiny model)',
  model,
  settings: { ...settings, model: model.file, streams: streamCounts, promptTokens, genTokens, loadConnections: load.connections, loadDepth: load.depth, loadSeconds: load.seconds, rounds: o.rounds },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${o.rounds} rounds per server, servers alternating, fresh process per round`,
  metricInfo,
  samples,
  notes: [
    'CPU = utime + stime of the server process (all threads) from /proc/<pid>/stat, 10 ms resolution; includes the model work',
    ...(fewStreams < streams
      ? [`at ${streams} streams the model work grows with the shared KV cache of all streams; with ${fewStreams} streams each decode step is cheap, so per-step costs (scheduling, sampling, hand-off to the HTTP side, SSE writes, idle compute threads spinning) dominate wall time and CPU`]
      : []),
    'the load generator runs in the benchmark process on the same 2 cores, so req/s is a lower bound for both servers',
    ...loadNotes,
  ],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

// Scenario 1, single stream: time to first token for a 512-token prompt and decode speed over 128 generated
// tokens, one request at a time. Also the memory-bandwidth ceiling for decode and each server's share of it.
//   node dist/bench/scenarios/single-stream.js [options]   (see --help)
import { measureBandwidth } from '../mem-bandwidth.js'
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { completionBody, interleave, log, warmUp } from '../harness/session.js'
import { expectTokens, firstTokenAt, lastTokenAt, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'single-stream'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
const promptTokens = o.promptTokens ?? 512
const genTokens = o.genTokens ?? (o.quick ? 64 : 128)
const reps = o.reps ?? (o.quick ? 2 : 4)
const settings: ServerSettings = {
  model: modelPath,
  threads: o.threads,
  parallel: 1,
  ctxPerSeq: Math.ceil((promptTokens + genTokens + 16) / 256) * 256,
  kvSize: Math.ceil((promptTokens + genTokens + 16) / 256) * 256,
  batch: 512,
  ubatch: 512,
  promptCache: true,
}

let bandwidth: Awaited<ReturnType<typeof measureBandwidth>> | null = null
if (o.bandwidth) {
  log(SCENARIO, 'measuring memory bandwidth')
  bandwidth = await measureBandwidth()
}

const samples = emptySamples()
await interleave(SCENARIO, o.rounds, reps, settings, o.llamaServer, (turn) => warmUp(turn, prompts.next(16)), async (turn) => {
  const r = await streamRequest(turn.agent, turn.server.url, '/v1/completions', completionBody(prompts.next(promptTokens), genTokens))
  expectTokens(r, genTokens, turn.kind)
  if (r.promptTokens !== promptTokens) throw new Error(`${turn.kind} counted ${r.promptTokens} prompt tokens, sent ${promptTokens}`)
  const first = firstTokenAt(r)
  const last = lastTokenAt(r)
  const ttft = first - r.sentAt
  const decode = ((r.completionTokens - 1) / (last - first)) * 1000
  addSample(samples, turn.kind, 'ttft_ms', ttft)
  addSample(samples, turn.kind, 'decode_tok_s', decode)
  addSample(samples, turn.kind, 'e2e_ms', r.endAt - r.sentAt)
  addSample(samples, turn.kind, 'peak_rss_mb', turn.server.peakRssBytes() / 2 ** 20)
  log(SCENARIO, `${turn.kind}: TTFT ${ttft.toFixed(0)} ms, decode ${decode.toFixed(2)} tok/s (${r.tokenTimes.length} content chunks)`)
})

const metricInfo: MetricInfo[] = [
  { key: 'ttft_ms', label: `time to first token, ${promptTokens}-token prompt`, unit: 'ms', better: 'lower' },
  { key: 'decode_tok_s', label: `decode speed over ${genTokens} tokens`, unit: 'tok/s', better: 'higher' },
  { key: 'e2e_ms', label: 'whole request', unit: 'ms', better: 'lower' },
  { key: 'peak_rss_mb', label: 'server peak RSS', unit: 'MiB', better: 'lower' },
]
const extra: Record<string, number | string> = { 'weight bytes read per token (MB)': model.weightBytesPerToken / 1e6 }
if (bandwidth) {
  const bound = bandwidth.best / model.weightBytesPerToken
  extra['memory bandwidth, copy read+write (GB/s)'] = bandwidth.best / 1e9
  extra['memory bandwidth 1 thread / all threads (GB/s)'] =
    `${(bandwidth.singleThread / 1e9).toFixed(2)} / ${(bandwidth.allThreads / 1e9).toFixed(2)} (${bandwidth.threads} threads)`
  extra['decode bound = bandwidth / weight bytes (tok/s)'] = bound
  extra['hearth decode as a fraction of the bound'] = Math.max(...(samples.hearth.decode_tok_s ?? [])) / bound
  extra['llama-server decode as a fraction of the bound'] = Math.max(...(samples['llama-server'].decode_tok_s ?? [])) / bound
}

const result = buildResult({
  scenario: SCENARIO,
  title: '1. Single stream',
  model,
  settings: { ...settings, model: model.file, promptTokens, genTokens, reps, rounds: o.rounds, flashAttention: 'auto' },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${o.rounds} rounds x ${reps} requests per server, both servers running, requests alternating, fresh processes per round`,
  metricInfo,
  samples,
  extra,
  notes: ['decode tok/s = (tokens - 1) / (last token time - first token time), timed at the client'],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

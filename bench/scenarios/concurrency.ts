// Scenario 3, concurrent streams: N clients start at once (server parallel = N, unified KV of N x ctx cells);
// aggregate generated tokens/s and the time between tokens each client sees, at N = 1, 4, 16 and 64.
// Short random prompts and short outputs keep the 64-stream level within minutes on two cores.
//   node dist/bench/scenarios/concurrency.js [--levels 1,4,16,64] [options]   (see --help)
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { completionBody, interleave, log, warmUp } from '../harness/session.js'
import { percentile, sum } from '../harness/stats.js'
import { expectTokens, firstTokenAt, lastTokenAt, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'concurrency'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
const levels = o.levels ?? (o.quick ? [1, 4, 16] : [1, 4, 16, 64])
// At 64 streams one decode step takes about 2 s on two cores (7x the 16-stream step for 4x the tokens), so
// 32-token prompts and 32 generated tokens keep that level near a minute and a half per server turn.
const promptTokens = o.promptTokens ?? 32
const genTokens = o.genTokens ?? 32
const ctxPerSeq = Math.ceil((promptTokens + genTokens + 16) / 256) * 256
const settingsFor = (n: number): ServerSettings => ({
  model: modelPath, threads: o.threads, parallel: n, ctxPerSeq, kvSize: ctxPerSeq * n, batch: 512, ubatch: 512, promptCache: true,
})

const samples = emptySamples()
const metricInfo: MetricInfo[] = []
for (const n of levels) {
  metricInfo.push(
    { key: `c${n}_tok_s`, label: `${n} stream${n === 1 ? "" : "s"}: aggregate generated`, unit: 'tok/s', better: 'higher' },
    { key: `c${n}_tbt_p50_ms`, label: `${n} stream${n === 1 ? "" : "s"}: time between tokens p50`, unit: 'ms', better: 'lower' },
    { key: `c${n}_tbt_p99_ms`, label: `${n} stream${n === 1 ? "" : "s"}: time between tokens p99`, unit: 'ms', better: 'lower' },
    { key: `c${n}_ttft_p50_ms`, label: `${n} stream${n === 1 ? "" : "s"}: time to first token p50`, unit: 'ms', better: 'lower' },
  )
  // batches of up to 16 streams take seconds, so each round alternates several of them between the two
  // servers; a 64-stream batch takes most of a minute and runs once per server and round
  const reps = o.reps ?? (o.quick || n >= 64 ? 1 : 3)
  await interleave(`${SCENARIO} x${n}`, o.rounds, reps, settingsFor(n), o.llamaServer, (turn) => warmUp(turn, prompts.next(16)), async (turn) => {
    const bodies = Array.from({ length: n }, () => completionBody(prompts.next(promptTokens), genTokens))
    const results = await Promise.all(bodies.map((b) => streamRequest(turn.agent, turn.server.url, '/v1/completions', b)))
    for (const r of results) expectTokens(r, genTokens, turn.kind)
    const start = Math.min(...results.map((r) => r.sentAt))
    const end = Math.max(...results.map(lastTokenAt))
    const tokens = sum(results.map((r) => r.completionTokens))
    const gaps = results.flatMap((r) => r.tokenTimes.slice(1).map((t, i) => t - r.tokenTimes[i]!))
    const ttfts = results.map((r) => firstTokenAt(r) - r.sentAt)
    const rate = (tokens / (end - start)) * 1000
    addSample(samples, turn.kind, `c${n}_tok_s`, rate)
    addSample(samples, turn.kind, `c${n}_tbt_p50_ms`, percentile(gaps, 50))
    addSample(samples, turn.kind, `c${n}_tbt_p99_ms`, percentile(gaps, 99))
    addSample(samples, turn.kind, `c${n}_ttft_p50_ms`, percentile(ttfts, 50))
    log(SCENARIO, `${turn.kind} x${n}: ${tokens} tokens in ${((end - start) / 1000).toFixed(1)} s = ${rate.toFixed(1)} tok/s, ` +
      `TBT p50 ${percentile(gaps, 50).toFixed(1)} ms p99 ${percentile(gaps, 99).toFixed(1)} ms`)
  })
}

const result = buildResult({
  scenario: SCENARIO,
  title: '3. Concurrent streams',
  model,
  settings: {
    model: model.file, threads: o.threads, levels, promptTokens, genTokens, ctxPerSeq, kvSize: `${ctxPerSeq} x streams`,
    parallel: 'streams', batch: 512, ubatch: 512, rounds: o.rounds, flashAttention: 'auto',
  },
  serverCommands: serverCommandLines(settingsFor(levels[levels.length - 1]!)),
  aggregation: `best of ${o.rounds} rounds per server and level (${o.reps ?? (o.quick ? 1 : 3)} batches of N requests per round${o.reps ? '' : ', 1 at 64 streams'}), both servers running, batches alternating, fresh processes per round`,
  metricInfo,
  samples,
  notes: [
    `each stream: ${promptTokens}-token random prompt, ${genTokens} generated tokens; all N requests sent at once`,
    'aggregate tok/s = all generated tokens / (first request sent -> last token received), so prompt work counts',
    'time between tokens: gaps between content chunks of each stream, pooled over all streams',
  ],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

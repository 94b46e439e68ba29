// Scenario 3, concurrent streams: N clients start at once (server parallel = N, unified KV of N x ctx cells);
// aggregate generated tokens/s and the time between tokens each client sees, at N = 1, 4, 16 and 64.
// Short random prompts and short outputs keep the 64-stream level within minutes on two cores.
//   node dist/bench/scenarios/concurrency.js [--levels 1,4,16,64] [options]   (see --help)
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { concurrentBatch } from '../harness/concurrent-batch.js'
import { interleave, log, warmUp } from '../harness/session.js'

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
    const f = await concurrentBatch(turn, prompts, n, promptTokens, genTokens)
    addSample(samples, turn.kind, `c${n}_tok_s`, f.tokS)
    addSample(samples, turn.kind, `c${n}_tbt_p50_ms`, f.gapP50Ms)
    addSample(samples, turn.kind, `c${n}_tbt_p99_ms`, f.gapP99Ms)
    addSample(samples, turn.kind, `c${n}_ttft_p50_ms`, f.ttftP50Ms)
    log(SCENARIO, `${turn.kind} x${n}: ${f.tokens} tokens in ${f.seconds.toFixed(1)} s = ${f.tokS.toFixed(1)} tok/s, ` +
      `TBT p50 ${f.gapP50Ms.toFixed(1)} ms p99 ${f.gapP99Ms.toFixed(1)} ms`)
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

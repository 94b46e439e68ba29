// Scenario 6, high concurrency with long prompts: N clients start at once, each with a 512-token random prompt,
// so the attention over many sequences' cells shows (scenario 3's 32-token prompts hide it). Two rows:
//   defaults: each server as its users run it for N slots (llama-server -np N -c: a KV stream per slot, its
//             --cache-ram and -b/-ub defaults; hearth --parallel N --ctx: its automatic KV layout)
//   unified:  both on one unified KV pool, batch 512 (the like-for-like layout of scenario 3)
//   node dist/bench/scenarios/high-concurrency.js [--levels 16,64,128] [--unified-levels 64] [options]
import { parseArgs } from 'node:util'
import { concurrentBatch } from '../harness/concurrent-batch.js'
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { interleave, log, warmUp } from '../harness/session.js'

const SCENARIO = 'high-concurrency'
const startedAt = Date.now()
const own = parseArgs({ args: process.argv.slice(2), options: { 'unified-levels': { type: 'string' } }, strict: false }).values
const argv = process.argv.slice(2).filter((a, i, all) => a !== '--unified-levels' && all[i - 1] !== '--unified-levels')
const parsed = parseScenarioOptions(argv)
// minutes per round on two cores: one round unless --rounds says otherwise
const o = { ...parsed, rounds: parsed.roundsGiven ? parsed.rounds : 1 }
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
// 128 streams prefill 64k prompt tokens (about 8 minutes per server on two cores): `npm run bench:scale` adds it
const levels = o.levels ?? (o.quick ? [4] : [16, 64])
const unifiedLevels = typeof own['unified-levels'] === 'string' ? own['unified-levels'].split(',').filter(Boolean).map(Number) : o.quick ? [] : [16]
const promptTokens = o.promptTokens ?? 512
const genTokens = o.genTokens ?? 32
const ctxPerSeq = Math.ceil((promptTokens + genTokens + 16) / 256) * 256
const settingsFor = (n: number, layout: 'defaults' | 'unified'): ServerSettings => ({
  model: modelPath, threads: o.threads, parallel: n, ctxPerSeq, kvSize: ctxPerSeq * n, batch: 512, ubatch: 512, promptCache: true, layout,
})

const samples = emptySamples()
const metricInfo: MetricInfo[] = []
const rows = [
  ...levels.map((n) => ({ n, layout: 'defaults' as const, key: `d${n}`, label: `${n} streams, defaults` })),
  ...unifiedLevels.map((n) => ({ n, layout: 'unified' as const, key: `u${n}`, label: `${n} streams, both unified` })),
]
for (const { n, layout, key, label } of rows) {
  metricInfo.push(
    { key: `${key}_tok_s`, label: `${label}: aggregate generated`, unit: 'tok/s', better: 'higher' },
    { key: `${key}_tbt_p50_ms`, label: `${label}: token gap p50`, unit: 'ms', better: 'lower' },
    { key: `${key}_tbt_p99_ms`, label: `${label}: token gap p99`, unit: 'ms', better: 'lower' },
    { key: `${key}_ttft_p50_ms`, label: `${label}: time to first token p50`, unit: 'ms', better: 'lower' },
  )
  // one batch per server and round: a 64-stream batch prefills 32k tokens, minutes on two cores
  await interleave(`${SCENARIO} ${key}`, o.rounds, o.reps ?? 1, settingsFor(n, layout), o.llamaServer, (turn) => warmUp(turn, prompts.next(16)), async (turn) => {
    const f = await concurrentBatch(turn, prompts, n, promptTokens, genTokens)
    addSample(samples, turn.kind, `${key}_tok_s`, f.tokS)
    addSample(samples, turn.kind, `${key}_tbt_p50_ms`, f.gapP50Ms)
    addSample(samples, turn.kind, `${key}_tbt_p99_ms`, f.gapP99Ms)
    addSample(samples, turn.kind, `${key}_ttft_p50_ms`, f.ttftP50Ms)
    log(SCENARIO, `${turn.kind} ${label}: ${f.tokens} tokens in ${f.seconds.toFixed(1)} s = ${f.tokS.toFixed(1)} tok/s, ` +
      `gap p50 ${f.gapP50Ms.toFixed(1)} ms p99 ${f.gapP99Ms.toFixed(1)} ms, TTFT p50 ${f.ttftP50Ms.toFixed(0)} ms`)
  })
}

const top = levels[levels.length - 1]!
const result = buildResult({
  scenario: SCENARIO,
  title: '6. High concurrency, 512-token prompts',
  model,
  settings: {
    model: model.file, threads: o.threads, levels, unifiedLevels, promptTokens, genTokens, ctxPerSeq, kvSize: `${ctxPerSeq} x streams`,
    parallel: 'streams', rounds: o.rounds,
  },
  serverCommands: serverCommandLines(settingsFor(top, 'defaults')),
  aggregation: `best of ${o.rounds} rounds per server and row (one batch of N requests per round), both servers running, batches alternating, fresh processes per round`,
  metricInfo,
  samples,
  notes: [
    `each stream: ${promptTokens}-token random prompt, ${genTokens} generated tokens; all N requests sent at once`,
    'defaults row: llama-server -np N -c N x ctx (a KV stream per slot, its -b 2048 -ub 512, --cache-ram 8192); hearth --parallel N --ctx --kv-size (automatic layout: a KV stream per sequence here)',
    'unified row: both --kv-unified (hearth --kv-layout unified), batch 512, each slot capped at ctx',
    'aggregate tok/s = all generated tokens / (first request sent -> last token received), so prompt work counts',
  ],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

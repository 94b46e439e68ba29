// Scenario 4, shared prefix: 16 chat clients at once with the same ~1k-token system prompt and different short
// questions, against a fresh server (wave 1), then 16 new questions against the now warm server (wave 2).
// This is where prompt caching and prefix sharing between sequences show; the random-prompt scenarios hide it.
//   node dist/bench/scenarios/shared-prefix.js [options]   (see --help; --levels N sets the client count)
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerKind, type ServerSettings } from '../harness/servers.js'
import { nextSeed } from '../harness/prompts.js'
import { alternate, log, SAMPLING, warmUp, type Turn } from '../harness/session.js'
import { QUESTIONS, SYSTEM_PROMPT } from '../harness/shared-prefix-text.js'
import { mean, percentile, sum } from '../harness/stats.js'
import { expectTokens, firstTokenAt, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'shared-prefix'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
const clients = o.levels?.[0] ?? (o.quick ? 4 : 16)
const genTokens = o.genTokens ?? (o.quick ? 16 : 32)
if (clients * 2 > QUESTIONS.length) throw new Error(`at most ${QUESTIONS.length / 2} clients (two waves of different questions)`)
// the system prompt is about 1k tokens; 1536 leaves room for the template, a question and the answer
const ctxPerSeq = 1536
const settings: ServerSettings = {
  model: modelPath, threads: o.threads, parallel: clients, ctxPerSeq, kvSize: ctxPerSeq * clients, batch: 512, ubatch: 512, promptCache: true,
}

function chatBody(kind: ServerKind, question: string): Record<string, unknown> {
  return {
    messages: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: question }],
    max_tokens: genTokens, ...SAMPLING, seed: nextSeed(), ignore_eos: true,
    // llama-server's default, stated: reuse the slot's KV for a matching prefix
    ...(kind === 'llama-server' ? { cache_prompt: true } : {}),
  }
}

const samples = emptySamples()
/** prompt tokens per question as each server counted them: the two must tokenize the chat identically */
const promptCounts: Record<ServerKind, Map<string, number>> = { hearth: new Map(), 'llama-server': new Map() }

async function wave(turn: Turn, name: string, questions: readonly string[]): Promise<void> {
  const results = await Promise.all(
    questions.map((q) => streamRequest(turn.agent, turn.server.url, '/v1/chat/completions', chatBody(turn.kind, q))),
  )
  results.forEach((r, i) => {
    expectTokens(r, genTokens, turn.kind)
    if (r.promptTokens + genTokens > ctxPerSeq) throw new Error(`prompt of ${r.promptTokens} tokens leaves no room in ${ctxPerSeq}`)
    promptCounts[turn.kind].set(questions[i]!, r.promptTokens)
  })
  const start = Math.min(...results.map((r) => r.sentAt))
  const wall = Math.max(...results.map((r) => r.endAt)) - start
  const ttfts = results.map((r) => firstTokenAt(r) - r.sentAt)
  const tokens = sum(results.map((r) => r.completionTokens))
  const add = (key: string, v: number) => addSample(samples, turn.kind, `${name}_${key}`, v)
  add('wall_ms', wall)
  add('ttft_mean_ms', mean(ttfts))
  add('ttft_p50_ms', percentile(ttfts, 50))
  add('ttft_p99_ms', percentile(ttfts, 99))
  add('tok_s', (tokens / wall) * 1000)
  add('cached_tokens', mean(results.map((r) => r.cachedTokens ?? NaN)))
  log(SCENARIO, `${turn.kind} ${name}: ${clients} requests in ${(wall / 1000).toFixed(1)} s, TTFT mean ${mean(ttfts).toFixed(0)} ms, ` +
    `cached tokens per request ${mean(results.map((r) => r.cachedTokens ?? NaN)).toFixed(0)} of ${mean(results.map((r) => r.promptTokens)).toFixed(0)}`)
}

await alternate(SCENARIO, o.rounds, settings, o.llamaServer, async (turn) => {
  // random token ids share no prefix with the chat prompts, so the warm-up primes no cache
  await warmUp(turn, prompts.next(16))
  await wave(turn, 'wave1', QUESTIONS.slice(0, clients))
  await wave(turn, 'wave2', QUESTIONS.slice(clients, clients * 2))
})

const metricInfo: MetricInfo[] = []
for (const [w, label] of [['wave1', 'wave 1 (cold)'], ['wave2', 'wave 2 (warm)']] as const) {
  metricInfo.push(
    { key: `${w}_wall_ms`, label: `${label}: wall time, all ${clients}`, unit: 'ms', better: 'lower' },
    { key: `${w}_ttft_mean_ms`, label: `${label}: TTFT mean`, unit: 'ms', better: 'lower' },
    { key: `${w}_ttft_p50_ms`, label: `${label}: TTFT p50`, unit: 'ms', better: 'lower' },
    { key: `${w}_ttft_p99_ms`, label: `${label}: TTFT p99`, unit: 'ms', better: 'lower' },
    { key: `${w}_tok_s`, label: `${label}: aggregate generated`, unit: 'tok/s', better: 'higher' },
    { key: `${w}_cached_tokens`, label: `${label}: cached prompt tokens per request (server-reported)`, unit: 'tokens', better: null },
  )
}
const notes = [
  `${clients} chat requests at once per wave, ${genTokens} generated tokens each; wave 2 asks ${clients} new questions of the same server`,
  'wall time: first request sent -> last stream finished; tok/s = generated tokens / wall time',
]
const differ = [...promptCounts.hearth].filter(([q, n]) => promptCounts['llama-server'].get(q) !== n)
const hp = mean([...promptCounts.hearth.values()])
const lp = mean([...promptCounts['llama-server'].values()])
notes.push(differ.length === 0
  ? `both servers counted the same prompt tokens for every question (${hp.toFixed(0)} on average)`
  : `PROMPT TOKEN COUNTS DIFFER for ${differ.length} questions, e.g. "${differ[0]![0]}": hearth ${differ[0]![1]}, llama-server ${promptCounts['llama-server'].get(differ[0]![0])}`)

const result = buildResult({
  scenario: SCENARIO,
  title: '4. Shared prefix (chat, ~1k-token system prompt)',
  model,
  settings: { ...settings, model: model.file, clients, genTokens, rounds: o.rounds, flashAttention: 'auto' },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${o.rounds} rounds per server (one wave of ${clients} requests each), servers alternating, fresh process per round`,
  metricInfo,
  samples,
  extra: { 'prompt tokens per request, mean (hearth / llama-server)': `${hp.toFixed(1)} / ${lp.toFixed(1)}` },
  notes,
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

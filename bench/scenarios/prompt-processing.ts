// Scenario 2, prompt processing: a 2048-token random prompt and one generated token, so the time to the first
// token is (almost) all prompt work. pp tok/s = prompt tokens / time to first token.
//   node dist/bench/scenarios/prompt-processing.js [options]   (see --help)
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerSettings } from '../harness/servers.js'
import { completionBody, interleave, log, warmUp } from '../harness/session.js'
import { expectTokens, firstTokenAt, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'prompt-processing'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
const promptTokens = o.promptTokens ?? 2048
const reps = o.reps ?? (o.quick ? 2 : 3)
const ctx = Math.ceil((promptTokens + 64) / 256) * 256
const settings: ServerSettings = {
  model: modelPath, threads: o.threads, parallel: 1, ctxPerSeq: ctx, kvSize: ctx, batch: 512, ubatch: 512, promptCache: true,
}

const samples = emptySamples()
await interleave(SCENARIO, o.rounds, reps, settings, o.llamaServer, (turn) => warmUp(turn, prompts.next(16)), async (turn) => {
  const r = await streamRequest(turn.agent, turn.server.url, '/v1/completions', completionBody(prompts.next(promptTokens), 1))
  expectTokens(r, 1, turn.kind)
  if (r.promptTokens !== promptTokens) throw new Error(`${turn.kind} counted ${r.promptTokens} prompt tokens, sent ${promptTokens}`)
  if (r.cachedTokens) throw new Error(`${turn.kind} reused ${r.cachedTokens} cached tokens of a random prompt`)
  const ttft = firstTokenAt(r) - r.sentAt
  const pp = (promptTokens / ttft) * 1000
  addSample(samples, turn.kind, 'pp_tok_s', pp)
  addSample(samples, turn.kind, 'ttft_ms', ttft)
  log(SCENARIO, `${turn.kind}: ${promptTokens} tokens in ${ttft.toFixed(0)} ms = ${pp.toFixed(1)} tok/s`)
})

const metricInfo: MetricInfo[] = [
  { key: 'pp_tok_s', label: `prompt processing, ${promptTokens}-token prompt`, unit: 'tok/s', better: 'higher' },
  { key: 'ttft_ms', label: 'time to first token', unit: 'ms', better: 'lower' },
]
const result = buildResult({
  scenario: SCENARIO,
  title: '2. Prompt processing',
  model,
  settings: { ...settings, model: model.file, promptTokens, maxTokens: 1, reps, rounds: o.rounds, flashAttention: 'auto' },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${o.rounds} rounds x ${reps} requests per server, both servers running, requests alternating, fresh processes per round`,
  metricInfo,
  samples,
  notes: ['pp tok/s = prompt tokens / time to first token (includes HTTP, tokenization-free token-id prompt and one sampling step)'],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

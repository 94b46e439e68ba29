// Scenario 7, multi-turn chat: U users each hold a T-turn conversation with the server, taking turns: every turn
// adds about 150 tokens of user text to the user's history (and the 64-token answer before it), and users
// interleave so that each turn arrives after other users' turns have passed through the server's slots (fewer
// slots than users). Each user starts at a seeded random offset and "thinks" a seeded random time between turns,
// the same schedule for both servers. This is where a server keeps (or loses) each user's history between
// turns: its slots' cells, and what it saved to RAM.
//   node dist/bench/scenarios/multi-turn.js [--levels USERS] [options]
import { mulberry32 } from '../rng.js'
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { serverCommandLines, type ServerKind, type ServerSettings } from '../harness/servers.js'
import { SYSTEM_PROMPT } from '../harness/shared-prefix-text.js'
import { alternate, log, SAMPLING, warmUp, type Turn } from '../harness/session.js'
import { percentile, sum } from '../harness/stats.js'
import { expectTokens, firstTokenAt, streamRequest } from '../harness/stream-client.js'

const SCENARIO = 'multi-turn'
const startedAt = Date.now()
const parsed = parseScenarioOptions()
// minutes per round on two cores: one round unless --rounds says otherwise
const o = { ...parsed, rounds: parsed.roundsGiven ? parsed.rounds : 1 }
const modelPath = await resolveBenchModel(o)
const { info: model, prompts } = inspectModel(modelPath)
// quick: still more users than slots, so turns find their history saved to RAM
const users = o.levels?.[0] ?? (o.quick ? 6 : 16)
const turns = o.quick ? 2 : 6
const genTokens = o.genTokens ?? (o.quick ? 32 : 64)
/** characters of user text per turn: about 150 tokens of the benchmark models' vocabulary */
const userChars = o.promptTokens ? o.promptTokens * 3.5 : 520
const slots = 4
const ctxPerSeq = 2048
const settings: ServerSettings = {
  model: modelPath, threads: o.threads, parallel: slots, ctxPerSeq, kvSize: ctxPerSeq * slots, batch: 512, ubatch: 512, promptCache: true, layout: 'defaults',
}
const SEED = 20261129

/** The seeded schedule: each user's start offset and the pauses between its turns, in ms. */
function schedule(): { start: number; pauses: number[] }[] {
  const rand = mulberry32(SEED)
  return Array.from({ length: users }, () => ({
    start: Math.floor(rand() * 4000),
    pauses: Array.from({ length: turns - 1 }, () => 500 + Math.floor(rand() * 3000)),
  }))
}

/** User text of about userChars characters: sentences of the library text, picked by a seeded generator. */
function userTexts(): string[][] {
  const sentences = SYSTEM_PROMPT.split(/(?<=\.)\s+/).filter((s) => s.length > 20)
  const rand = mulberry32(SEED + 1)
  return Array.from({ length: users }, () =>
    Array.from({ length: turns }, () => {
      let text = ''
      while (text.length < userChars) text += (text ? ' ' : '') + sentences[Math.floor(rand() * sentences.length)]!
      return text
    }),
  )
}

interface Message {
  role: 'user' | 'assistant'
  content: string
}

const samples = emptySamples()
const counted: Record<ServerKind, { prompt: number; cached: number }> = { hearth: { prompt: 0, cached: 0 }, 'llama-server': { prompt: 0, cached: 0 } }
const plan = schedule()
const texts = userTexts()

async function conversation(turn: Turn, u: number, t0: number, ttfts: number[][]): Promise<{ prompt: number; cached: number }> {
  const history: Message[] = []
  let prompt = 0
  let cached = 0
  await new Promise((r) => setTimeout(r, t0 + plan[u]!.start - performance.now()))
  for (let k = 0; k < turns; k++) {
    if (k > 0) await new Promise((r) => setTimeout(r, plan[u]!.pauses[k - 1]))
    history.push({ role: 'user', content: texts[u]![k]! })
    const body = {
      messages: history, max_tokens: genTokens, ...SAMPLING, seed: SEED + u * 100 + k, ignore_eos: true,
      ...(turn.kind === 'llama-server' ? { cache_prompt: true } : {}),
    }
    const r = await streamRequest(turn.agent, turn.server.url, '/v1/chat/completions', body)
    expectTokens(r, genTokens, turn.kind)
    if (r.cachedTokens === null) throw new Error(`${turn.kind} reported no cached_tokens`)
    ttfts[k]!.push(firstTokenAt(r) - r.sentAt)
    prompt += r.promptTokens
    cached += r.cachedTokens
    history.push({ role: 'assistant', content: r.text })
  }
  return { prompt, cached }
}

await alternate(SCENARIO, o.rounds, settings, o.llamaServer, async (turn) => {
  // random token ids share no prefix with the chats, so the warm-up primes no cache
  await warmUp(turn, prompts.next(16))
  const ttfts = Array.from({ length: turns }, () => [] as number[])
  const t0 = performance.now()
  const totals = await Promise.all(Array.from({ length: users }, (_, u) => conversation(turn, u, t0, ttfts)))
  const wall = performance.now() - t0
  const prompt = sum(totals.map((x) => x.prompt))
  const cached = sum(totals.map((x) => x.cached))
  counted[turn.kind] = { prompt, cached }
  const add = (key: string, v: number) => addSample(samples, turn.kind, key, v)
  for (let k = 0; k < turns; k++) {
    add(`t${k + 1}_ttft_p50_ms`, percentile(ttfts[k]!, 50))
    add(`t${k + 1}_ttft_p99_ms`, percentile(ttfts[k]!, 99))
  }
  const later = ttfts.slice(1).flat()
  add('later_ttft_p50_ms', percentile(later, 50))
  add('later_ttft_p99_ms', percentile(later, 99))
  add('computed_tokens', prompt - cached)
  add('reused_tokens', cached)
  add('wall_ms', wall)
  log(SCENARIO, `${turn.kind}: ${users} users x ${turns} turns in ${(wall / 1000).toFixed(1)} s; prompt tokens ${prompt}, ` +
    `reused ${cached}, computed ${prompt - cached}; TTFT p50 over turns 2-${turns} ${percentile(later, 50).toFixed(0)} ms`)
})

const metricInfo: MetricInfo[] = [
  { key: 'later_ttft_p50_ms', label: `TTFT p50, turns 2-${turns}`, unit: 'ms', better: 'lower' },
  { key: 'later_ttft_p99_ms', label: `TTFT p99, turns 2-${turns}`, unit: 'ms', better: 'lower' },
  { key: 'computed_tokens', label: 'prompt tokens computed, all turns', unit: 'tokens', better: 'lower' },
  { key: 'reused_tokens', label: 'prompt tokens reused (server-reported cached_tokens)', unit: 'tokens', better: 'higher' },
  { key: 'wall_ms', label: 'wall time, all conversations', unit: 'ms', better: 'lower' },
]
for (let k = 0; k < turns; k++) {
  metricInfo.push(
    { key: `t${k + 1}_ttft_p50_ms`, label: `turn ${k + 1}: TTFT p50`, unit: 'ms', better: 'lower' },
    { key: `t${k + 1}_ttft_p99_ms`, label: `turn ${k + 1}: TTFT p99`, unit: 'ms', better: 'lower' },
  )
}

const result = buildResult({
  scenario: SCENARIO,
  title: '7. Multi-turn chat',
  model,
  settings: { model: model.file, threads: o.threads, users, turns, slots, ctxPerSeq, kvSize: ctxPerSeq * slots, userChars, genTokens, rounds: o.rounds, seed: SEED },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${o.rounds} rounds per server, servers alternating, fresh process per round`,
  metricInfo,
  samples,
  extra: {
    'prompt tokens, all turns (hearth / llama-server)': `${counted.hearth.prompt} / ${counted['llama-server'].prompt}`,
  },
  notes: [
    `${users} users x ${turns} turns, ${slots} slots on both servers (each as its users run it: llama-server -np ${slots} -c ${ctxPerSeq * slots} with its default --cache-ram; hearth --parallel ${slots} --ctx ${ctxPerSeq})`,
    `each turn: ~${userChars} characters (~150 tokens) of user text, ${genTokens} generated tokens, the whole history resent`,
    'users start at seeded offsets within 4 s and pause 0.5-3.5 s (seeded) between turns: the same schedule on both servers',
    'computed = prompt tokens - cached_tokens as each server reports them',
  ],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

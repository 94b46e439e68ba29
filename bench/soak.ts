// Soak: N concurrent streaming clients for M minutes against hearth and then llama-server (same model, same
// flags as the other scenarios, same seeded mix of requests: chat and completions, short and long, some
// streams walked away from mid-answer), with the server's resident memory (VmRSS) and the error counts
// sampled every few seconds. RSS is called flat when the mean of the last third of the samples is within
// FLAT_GROWTH of the middle third's (the first third is warm-up: caches and pools filling).
//   npm run soak -- --streams 8 --minutes 3 [--tiny] [--no-prompt-cache] [--servers hearth,llama-server] (see --help)
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { gitCommit, machineInfo } from './harness/machine.js'
import { inspectModel } from './harness/model-info.js'
import { PASSED_ON_OPTIONS, resolveBenchModel } from './harness/options.js'
import { buildLlamaServerScript, defaultLlamaServer, repoRoot, resultsDir, tinyModelPath } from './harness/paths.js'
import { rssBytes } from './harness/proc-memory.js'
import { SAMPLING, log } from './harness/session.js'
import { SERVER_KINDS, serverCommandLines, startServer, type RunningServer, type ServerKind, type ServerSettings } from './harness/servers.js'
import { soakRequest } from './harness/soak-client.js'
import { keepAliveAgent } from './harness/stream-client.js'
import { mulberry32 } from './rng.js'

const SCENARIO = 'soak'
const FLAT_GROWTH = 0.03
const USAGE = `Usage: npm run soak -- [options]

  --streams N          concurrent streaming clients (default 8); each server gets --parallel N
  --minutes M          per server (default 3)
  --sample-seconds S   RSS and counters every S seconds (default 5)
  --servers LIST       hearth,llama-server (default both, in that order)
  --tiny               serve the built-in 2.6M model (quick); default the benchmark model (--model-shape/--model-type)
  --model PATH         serve this GGUF instead
  --model-shape S --model-type T   as for npm run bench (default qwen2.5-0.5b q8_0)
  --ctx N              tokens per sequence (default 256 with --tiny, else 1024)
  --no-prompt-cache    both servers without prompt caches (llama-server: also no host-RAM cache, --cache-ram 0)
  --threads N          for both servers (default all CPUs)
  --llama-server PATH  (default ${defaultLlamaServer.replace(repoRoot + '/', '')}; built on first use)
  --seed N             the request mix (default 1): both servers get the same sequence per client
  --out DIR            where soak.json goes (default bench/results)
`

const { values } = parseArgs({
  options: {
    ...PASSED_ON_OPTIONS,
    streams: { type: 'string', default: '8' },
    minutes: { type: 'string', default: '3' },
    'sample-seconds': { type: 'string', default: '5' },
    servers: { type: 'string', default: SERVER_KINDS.join(',') },
    tiny: { type: 'boolean', default: false },
    'no-prompt-cache': { type: 'boolean', default: false },
    ctx: { type: 'string' },
    'llama-server': { type: 'string', default: defaultLlamaServer },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: resultsDir },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
function positive(name: string, raw: string, allowFraction = false): number {
  const v = Number(raw)
  if (!(v > 0) || (!allowFraction && !Number.isInteger(v))) throw new Error(`--${name} must be a positive ${allowFraction ? 'number' : 'integer'}, got ${raw}`)
  return v
}
const streams = positive('streams', values.streams)
const minutes = positive('minutes', values.minutes, true)
const sampleMs = positive('sample-seconds', values['sample-seconds'], true) * 1000
const kinds = values.servers.split(',').map((s) => s.trim()) as ServerKind[]
for (const k of kinds) if (!SERVER_KINDS.includes(k)) throw new Error(`--servers: unknown ${k}`)
const threads = values.threads ? positive('threads', values.threads) : availableParallelism()
const seed = Number(values.seed)
const modelPath = values.tiny ? tinyModelPath : await resolveBenchModel({ model: values.model ?? null, modelShape: values['model-shape'], modelType: values['model-type'] })
const ctxPerSeq = values.ctx ? positive('ctx', values.ctx) : values.tiny || modelPath === tinyModelPath ? 256 : 1024
const { info: model, prompts } = inspectModel(modelPath)
// with prompt caches, llama-server also keeps finished prompts' KV state in host memory (--cache-ram, 8 GiB by
// default), which its RSS shows growing until that bound; --no-prompt-cache compares the two without it
const settings: ServerSettings = {
  model: modelPath, threads, parallel: streams, ctxPerSeq, kvSize: ctxPerSeq * streams, batch: 512, ubatch: 512, promptCache: !values['no-prompt-cache'],
}

// the mix, in tokens: a long answer takes most of the context, a long prompt a quarter of it
const SHORT_TOKENS: [number, number] = [8, 32]
const LONG_TOKENS = Math.floor(ctxPerSeq * 0.6)
const LONG_PROMPT = Math.floor(ctxPerSeq * 0.25)
const WORDS = ['the', 'house', 'of', 'a', 'truth', 'and', 'in', 'light', 'said', 'morning', 'letter', 'river', 'garden', 'was', 'not', 'never']
const REQUEST_TIMEOUT_MS = 300_000

interface Planned {
  path: string
  body: Record<string, unknown>
  abortAfterChunks: number | null
  what: 'chat' | 'completions'
}

/** Client `client`'s next request: the same sequence on every server. */
function planner(client: number): () => Planned {
  const rand = mulberry32(seed * 1_000_003 + client)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  let n = 0
  return () => {
    const long = rand() < 0.25
    const maxTokens = long ? LONG_TOKENS : int(...SHORT_TOKENS)
    const promptTokens = rand() < 0.2 ? LONG_PROMPT : int(8, 32)
    const abortAfterChunks = rand() < 0.15 ? int(1, Math.max(1, maxTokens - 1)) : null
    const common = { ...SAMPLING, max_tokens: maxTokens, seed: seed * 100_000 + client * 1000 + n++, ignore_eos: true }
    if (rand() < 0.5) {
      // these words are 1-5 tokens each (about 1.6 with the built-in model's vocabulary), and the template adds some
      const text = Array.from({ length: Math.ceil(promptTokens / 2) }, () => WORDS[int(0, WORDS.length - 1)]).join(' ')
      return { path: '/v1/chat/completions', body: { ...common, messages: [{ role: 'user', content: text }] }, abortAfterChunks, what: 'chat' }
    }
    return { path: '/v1/completions', body: { ...common, prompt: prompts.next(promptTokens) }, abortAfterChunks, what: 'completions' }
  }
}

interface Sample {
  /** seconds since the soak started */
  t: number
  rssMB: number
  requests: number
  tokens: number
  aborted: number
  errors: number
}

interface ServerSoak {
  samples: Sample[]
  requests: number
  completed: number
  aborted: number
  tokens: number
  /** requests that failed, and by what */
  failed: number
  errors: Record<string, number>
  seconds: number
  /** hearth only: sequences active + queued after the clients stopped (0 = nothing leaked) */
  leftActive: number | null
  rss: { startMB: number; minMB: number; maxMB: number; endMB: number; middleThirdMB: number; lastThirdMB: number; growth: number; slopeMBPerMin: number; flat: boolean }
}

function mean(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)
}

/** Least-squares slope of rss over time, in MB per minute. */
function slope(samples: Sample[]): number {
  const mt = mean(samples.map((s) => s.t))
  const mr = mean(samples.map((s) => s.rssMB))
  const num = samples.reduce((a, s) => a + (s.t - mt) * (s.rssMB - mr), 0)
  const den = samples.reduce((a, s) => a + (s.t - mt) ** 2, 0)
  return den > 0 ? (num / den) * 60 : 0
}

async function hearthBusy(server: RunningServer): Promise<number> {
  // waits for the last cancellations to land, polling; a bound keeps a real leak from hanging the run
  const deadline = Date.now() + 30_000
  for (;;) {
    const text = await fetch(`${server.url}/metrics`).then((r) => r.text(), () => '')
    const busy = Number(/^hearth_sequences_active (\d+)/m.exec(text)?.[1] ?? NaN) + Number(/^hearth_sequences_queued (\d+)/m.exec(text)?.[1] ?? NaN)
    if (busy === 0 || Date.now() > deadline) return busy
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function soak(kind: ServerKind, llamaServer: string): Promise<ServerSoak> {
  log(SCENARIO, `starting ${kind}`)
  const server = await startServer(kind, settings, llamaServer)
  const agent = keepAliveAgent()
  try {
    const warm = await soakRequest(agent, server.url, '/v1/completions', { ...SAMPLING, prompt: prompts.next(8), max_tokens: 4, ignore_eos: true }, null, REQUEST_TIMEOUT_MS)
    if (!warm.ok) throw new Error(`${kind} warm-up failed: ${warm.error}`)
    const counters = { requests: 0, completed: 0, aborted: 0, tokens: 0, failed: 0 }
    const errors: Record<string, number> = {}
    const samples: Sample[] = []
    const started = performance.now()
    const endAt = started + minutes * 60_000
    const sample = () => {
      const s: Sample = { t: (performance.now() - started) / 1000, rssMB: rssBytes(server.pid) / 2 ** 20, requests: counters.requests, tokens: counters.tokens, aborted: counters.aborted, errors: counters.failed }
      samples.push(s)
      log(SCENARIO, `${kind} ${s.t.toFixed(0).padStart(4)} s: RSS ${s.rssMB.toFixed(1)} MB, ${s.requests} requests, ${s.tokens} tokens, ${s.aborted} walked away, ${s.errors} errors`)
    }
    sample()
    const timer = setInterval(sample, sampleMs)
    const client = async (i: number) => {
      const next = planner(i)
      while (performance.now() < endAt) {
        const p = next()
        counters.requests++
        const o = await soakRequest(agent, server.url, p.path, p.body, p.abortAfterChunks, REQUEST_TIMEOUT_MS)
        if (!o.ok) {
          counters.failed++
          const key = `${p.what}: ${o.error}`
          errors[key] = (errors[key] ?? 0) + 1
        } else if (o.aborted) counters.aborted++
        else counters.completed++
        counters.tokens += o.completionTokens
      }
    }
    await Promise.all(Array.from({ length: streams }, (_, i) => client(i)))
    clearInterval(timer)
    sample()
    const seconds = (performance.now() - started) / 1000
    const leftActive = kind === 'hearth' ? await hearthBusy(server) : null
    // the first third is warm-up; the middle and last thirds are compared
    const third = Math.floor(samples.length / 3)
    const middle = samples.slice(third, 2 * third).map((s) => s.rssMB)
    const last = samples.slice(2 * third).map((s) => s.rssMB)
    const rssAll = samples.map((s) => s.rssMB)
    const growth = (mean(last) - mean(middle)) / mean(middle)
    return {
      samples, ...counters, errors, seconds, leftActive,
      rss: {
        startMB: rssAll[0]!, minMB: Math.min(...rssAll), maxMB: Math.max(...rssAll), endMB: rssAll.at(-1)!, middleThirdMB: mean(middle), lastThirdMB: mean(last),
        growth, slopeMBPerMin: slope(samples.slice(third)), flat: growth <= FLAT_GROWTH,
      },
    }
  } finally {
    agent.destroy()
    await server.stop()
  }
}

function ensureLlamaServer(path: string): string {
  if (existsSync(path)) return path
  if (path !== defaultLlamaServer) throw new Error(`no llama-server at ${path}`)
  log(SCENARIO, 'building llama-server (several minutes on first use)')
  const out = execFileSync(process.execPath, [buildLlamaServerScript], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  return out.trim().split('\n').pop()!.trim()
}

const llamaServer = kinds.includes('llama-server') ? ensureLlamaServer(values['llama-server']) : values['llama-server']
const results: Partial<Record<ServerKind, ServerSoak>> = {}
for (const kind of kinds) results[kind] = await soak(kind, llamaServer)

const mb = (x: number) => x.toFixed(1)
const header = ['server', 'requests', 'done', 'walked away', 'errors', 'tokens', 'tok/s', 'RSS start', 'RSS min..max', 'RSS mid 1/3', 'RSS last 1/3', 'growth', 'MB/min', 'flat', 'left active']
const rows = Object.entries(results).map(([k, r]) => [
  k, r.requests, r.completed, r.aborted, r.failed, r.tokens, (r.tokens / r.seconds).toFixed(1), mb(r.rss.startMB), `${mb(r.rss.minMB)}..${mb(r.rss.maxMB)}`,
  mb(r.rss.middleThirdMB), mb(r.rss.lastThirdMB), `${(r.rss.growth * 100).toFixed(1)}%`, r.rss.slopeMBPerMin.toFixed(2), r.rss.flat ? 'yes' : 'NO', r.leftActive ?? '-',
].map(String))
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
console.log(`\nsoak: ${streams} streams x ${minutes} min per server, ${model.file}, ctx ${ctxPerSeq}, ${threads} threads, prompt cache ${settings.promptCache ? 'on' : 'off'}, RSS every ${sampleMs / 1000} s (MB = MiB)`)
console.log(line(header))
for (const r of rows) console.log(line(r))
for (const [k, r] of Object.entries(results)) for (const [e, n] of Object.entries(r.errors)) console.log(`  ${k} error x${n}: ${e}`)
console.log(`flat = mean RSS of the last third of the samples within ${FLAT_GROWTH * 100}% of the middle third's; MB/min = least-squares slope over the last two thirds`)

mkdirSync(values.out, { recursive: true })
const file = join(values.out, `${SCENARIO}${settings.promptCache ? '' : '-no-prompt-cache'}.json`)
writeFileSync(file, JSON.stringify({
  scenario: SCENARIO, date: new Date().toISOString(), commit: gitCommit(), machine: machineInfo(), model,
  settings: { ...settings, model: model.file, streams, minutes, sampleSeconds: sampleMs / 1000, seed, longTokens: LONG_TOKENS, shortTokens: SHORT_TOKENS, longPrompt: LONG_PROMPT, flatGrowth: FLAT_GROWTH },
  serverCommands: serverCommandLines(settings),
  results,
}, null, 1))
log(SCENARIO, `wrote ${file}`)

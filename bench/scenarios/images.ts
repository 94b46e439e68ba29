// Scenario 8, images: both servers load the same random-weight SigLIP-so400m-shaped projector (--mmproj; 729
// embeddings per image into the Qwen2.5-0.5B shape) and read a real JPEG sent as a data URL.
//  a) time to first token of one chat request with one image, alone on the server;
//  b) N text streams (default 4) are streaming when one or two image requests arrive: the gaps between the text
//     streams' tokens while the images are encoded and prefilled. llama-server encodes on its one loop thread,
//     so its streams wait for the whole encode; hearth encodes on a worker while its step loop keeps decoding.
// Every image request starts with different text, so neither server can reuse an earlier image's KV cells.
//   node dist/bench/scenarios/images.js [--levels N (text streams)] [options]   (see --help)
import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readGGUFMetadata } from '../gguf-reader.js'
import { ensureProjector } from '../make-projector.js'
import { SIGLIP_SHAPE } from '../projector-model.js'
import { inspectModel } from '../harness/model-info.js'
import { parseScenarioOptions, resolveBenchModel } from '../harness/options.js'
import { repoRoot } from '../harness/paths.js'
import { nextSeed } from '../harness/prompts.js'
import { addSample, buildResult, consoleTable, emptySamples, writeResult, type MetricInfo } from '../harness/result.js'
import { SERVER_KINDS, serverCommandLines, startServer, type ServerKind, type ServerSettings } from '../harness/servers.js'
import { completionBody, log, SAMPLING, type Turn } from '../harness/session.js'
import { SYSTEM_PROMPT } from '../harness/shared-prefix-text.js'
import { mean, percentile } from '../harness/stats.js'
import { expectTokens, firstTokenAt, keepAliveAgent, streamRequest, type StreamOutcome } from '../harness/stream-client.js'

const SCENARIO = 'images'
const startedAt = Date.now()
const o = parseScenarioOptions()
const modelPath = await resolveBenchModel(o)
const projectorPath = await ensureProjector()
const { info: model } = inspectModel(modelPath)
const meta = readGGUFMetadata(modelPath)
const width = Number(meta.get(`${String(meta.get('general.architecture'))}.embedding_length`))
if (width !== SIGLIP_SHAPE.textHidden) {
  throw new Error(`the image scenario's projector feeds ${SIGLIP_SHAPE.textHidden}-wide text models (the qwen2.5-0.5b shape); ${model.file} is ${width} wide`)
}
const imagePath = join(repoRoot, 'deps', 'llama.cpp', 'tools', 'mtmd', 'test-1.jpeg')
const imageBytes = readFileSync(imagePath)
const imageUrl = `data:image/jpeg;base64,${imageBytes.toString('base64')}`

const streams = o.levels?.[0] ?? 4
// an image costs each server tens of seconds on two cores: --quick runs one round unless --rounds says otherwise
const rounds = o.quick && !process.argv.includes('--rounds') ? 1 : o.rounds
const imagesUnderLoad = o.quick ? 1 : 2
const ttftReps = o.reps ?? (o.quick ? 1 : 2)
/** tokens each image request generates: its first one is what is timed */
const imageGen = o.genTokens ?? 4
// 729 image embeddings + the template and a short question + the answer fit in 1024; a text stream's limit is
// never reached: it is hung up on once the images are answered (see underLoad)
const ctxPerSeq = 1024
const textMax = ctxPerSeq - 64
const parallel = streams + imagesUnderLoad
const settings: ServerSettings = {
  model: modelPath, threads: o.threads, parallel, ctxPerSeq, kvSize: ctxPerSeq * parallel, batch: 512, ubatch: 512,
  promptCache: true, mmproj: projectorPath,
}

/**
 * A text stream's prompt. Text, not token ids: llama-server with a projector takes only string prompts. The nonce
 * comes first, so no prompt shares a cached prefix with another beyond a token or two.
 */
const TEXT = SYSTEM_PROMPT.split(/\s+/).slice(0, 24).join(' ')
function textBody(): Record<string, unknown> {
  return { ...completionBody(`Note ${randomInt(1e6)}-${nextSeed()}. ${TEXT}`, textMax) }
}

/** Different leading text per request: the image's cells follow it, so no earlier request's cells match. */
function imageBody(kind: ServerKind): Record<string, unknown> {
  const text = `Picture ${randomInt(1e6)}-${nextSeed()}: what does it show?`
  return {
    messages: [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: imageUrl } }] }],
    max_tokens: imageGen, ...SAMPLING, seed: nextSeed(), ignore_eos: true,
    ...(kind === 'llama-server' ? { cache_prompt: true } : {}),
  }
}

const samples = emptySamples()
const imagePromptTokens: Record<ServerKind, number[]> = { hearth: [], 'llama-server': [] }

function imageRequest(turn: Turn): Promise<StreamOutcome> {
  return streamRequest(turn.agent, turn.server.url, '/v1/chat/completions', imageBody(turn.kind)).then((r) => {
    expectTokens(r, imageGen, `${turn.kind} image request`)
    imagePromptTokens[turn.kind].push(r.promptTokens)
    return r
  })
}

/** Pages in the weights and builds the text model's graphs; the projectors warm up as they load, on both servers. */
async function warm(turn: Turn): Promise<void> {
  const r = await streamRequest(turn.agent, turn.server.url, '/v1/completions', completionBody(`Hello ${TEXT}`, 4))
  expectTokens(r, 4, `${turn.kind} warm-up`)
}

/** a) one image request alone */
async function alone(turn: Turn): Promise<void> {
  const r = await imageRequest(turn)
  const ttft = firstTokenAt(r) - r.sentAt
  addSample(samples, turn.kind, 'ttft_ms', ttft)
  log(SCENARIO, `${turn.kind}: one image alone, TTFT ${ttft.toFixed(0)} ms (${r.promptTokens} prompt tokens)`)
}

/** Resolves once every stream's text-chunk count has reached its target (targets are set by the caller). */
class StreamCounts {
  readonly counts: number[]
  readonly #targets: number[]
  #wake: (() => void) | null = null

  constructor(n: number) {
    this.counts = new Array<number>(n).fill(0)
    this.#targets = new Array<number>(n).fill(Infinity)
  }

  seen(i: number, count: number): void {
    this.counts[i] = count
    if (this.#wake && this.counts.every((c, j) => c >= this.#targets[j]!)) this.#wake()
  }

  /** each stream at least `more` chunks past where it is now */
  reach(more: number): Promise<void> {
    this.counts.forEach((c, j) => (this.#targets[j] = c + more))
    if (this.counts.every((c, j) => c >= this.#targets[j]!)) return Promise.resolve()
    return new Promise((resolve) => (this.#wake = resolve))
  }
}

/** b) images arriving while text streams are streaming; the text streams' gaps during the image window */
async function underLoad(turn: Turn): Promise<void> {
  const hangUp = new AbortController()
  const counts = new StreamCounts(streams)
  const allStreaming = counts.reach(1)
  const texts = Array.from({ length: streams }, (_, i) =>
    streamRequest(turn.agent, turn.server.url, '/v1/completions', textBody(), {
      stop: hangUp.signal,
      onText: (n) => counts.seen(i, n),
    }),
  )
  // a text stream that fails or ends early must not leave this waiting for the others
  const textsDone = Promise.all(texts)
  const endedEarly = textsDone.then(() => Promise.reject(new Error('text streams ended before all of them streamed')))
  endedEarly.catch(() => undefined) // handled by the race below, or moot once every stream streams
  try {
    await Promise.race([allStreaming, endedEarly])
    const images = await Promise.all(Array.from({ length: imagesUnderLoad }, () => imageRequest(turn)))
    // every stream's gap across the image window must be closed by a token after it
    await Promise.race([counts.reach(2), textsDone])
    hangUp.abort()
    const textResults = await textsDone
    if (textResults.some((r) => r.finishReason !== null)) throw new Error(`a text stream finished before the images were answered; max_tokens ${textMax} is too few`)
    score(turn, images, textResults)
    await waitIdle(turn)
  } finally {
    hangUp.abort()
    await textsDone.catch(() => undefined)
  }
}

function score(turn: Turn, images: StreamOutcome[], texts: StreamOutcome[]): void {
  // the image window: first image request sent -> last image's first token
  const from = Math.min(...images.map((r) => r.sentAt))
  const to = Math.max(...images.map(firstTokenAt))
  const gaps: number[] = []
  let tokensInWindow = 0
  for (const r of texts) {
    const t = r.tokenTimes
    for (let i = 1; i < t.length; i++) if (t[i]! > from && t[i - 1]! < to) gaps.push(t[i]! - t[i - 1]!)
    tokensInWindow += t.filter((x) => x > from && x <= to).length
  }
  const window = to - from
  const add = (key: string, v: number) => addSample(samples, turn.kind, key, v)
  add('load_tbt_p50_ms', percentile(gaps, 50))
  add('load_tbt_p99_ms', percentile(gaps, 99))
  add('load_tbt_max_ms', Math.max(...gaps))
  add('load_text_tok_s', (tokensInWindow / window) * 1000)
  add('load_image_ttft_ms', window)
  log(SCENARIO, `${turn.kind}: ${images.length} image(s) under ${texts.length} text streams: answered after ${(window / 1000).toFixed(1)} s; ` +
    `text gaps in that window p50 ${percentile(gaps, 50).toFixed(0)} ms, p99 ${percentile(gaps, 99).toFixed(0)} ms, ` +
    `max ${Math.max(...gaps).toFixed(0)} ms (${gaps.length} gaps), ${tokensInWindow} text tokens`)
}

/** Until the server has dropped the streams hung up on, so their leftovers never reach the next measurement. */
async function waitIdle(turn: Turn): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (turn.kind === 'hearth') {
      const text = await fetch(`${turn.server.url}/metrics`).then((r) => r.text(), () => '')
      const busy = Number(/^hearth_sequences_active (\d+)/m.exec(text)?.[1]) + Number(/^hearth_sequences_queued (\d+)/m.exec(text)?.[1])
      if (busy === 0) return
    } else {
      const slots = await fetch(`${turn.server.url}/slots`).then((r) => r.json() as Promise<{ is_processing?: boolean }[]>, () => null)
      if (Array.isArray(slots) && slots.every((s) => s.is_processing === false)) return
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${turn.kind} still busy 60 s after its streams were hung up on`)
}

function turnError(turn: Turn, err: unknown): Error {
  return new Error(`${turn.kind}, round ${turn.round + 1}: ${(err as Error).message}\n--- ${turn.kind} output ---\n${turn.server.logTail().slice(-3000)}`)
}

// Both servers side by side per round, as session.ts's interleave, but with the order swapped every round as well
// as every repetition: with one batch under load per round, interleave would always start with hearth.
for (let round = 0; round < rounds; round++) {
  log(SCENARIO, `round ${round + 1}/${rounds}: starting both servers`)
  const turns: Turn[] = []
  const run = async (turn: Turn, what: (t: Turn) => Promise<void>) => {
    try {
      await what(turn)
    } catch (err) {
      throw turnError(turn, err)
    }
  }
  try {
    for (const kind of SERVER_KINDS) {
      turns.push({ kind, round, server: await startServer(kind, settings, o.llamaServer), agent: keepAliveAgent() })
    }
    for (const turn of turns) await run(turn, warm)
    const ordered = (k: number) => ((round + k) % 2 === 0 ? turns : [...turns].reverse())
    for (let rep = 0; rep < ttftReps; rep++) for (const turn of ordered(rep)) await run(turn, alone)
    for (const turn of ordered(ttftReps)) await run(turn, underLoad)
  } finally {
    for (const turn of turns) {
      turn.agent.destroy()
      await turn.server.stop()
    }
  }
}

const metricInfo: MetricInfo[] = [
  { key: 'ttft_ms', label: 'one image alone: time to first token', unit: 'ms', better: 'lower' },
  { key: 'load_tbt_p50_ms', label: `${streams} text streams while ${imagesUnderLoad} image(s) encode: time between tokens p50`, unit: 'ms', better: 'lower' },
  { key: 'load_tbt_p99_ms', label: `${streams} text streams while ${imagesUnderLoad} image(s) encode: time between tokens p99`, unit: 'ms', better: 'lower' },
  { key: 'load_tbt_max_ms', label: `${streams} text streams while ${imagesUnderLoad} image(s) encode: longest gap`, unit: 'ms', better: 'lower' },
  { key: 'load_text_tok_s', label: `${streams} text streams while ${imagesUnderLoad} image(s) encode: text generated`, unit: 'tok/s', better: 'higher' },
  { key: 'load_image_ttft_ms', label: `${imagesUnderLoad} image(s) under load: until the last one's first token`, unit: 'ms', better: 'lower' },
]
const counts = (k: ServerKind) => [...new Set(imagePromptTokens[k])].join('/')
const result = buildResult({
  scenario: SCENARIO,
  title: '8. Images (SigLIP-so400m-shaped projector)',
  model,
  settings: {
    ...settings, model: model.file, mmproj: 'siglip-so400m-shaped, 729 embeddings per image, F16', image: 'test-1.jpeg',
    streams, imagesUnderLoad, ttftReps, textPrompt: 'a number + 24 words of English', imageGen, rounds: rounds, flashAttention: 'auto',
  },
  serverCommands: serverCommandLines(settings),
  aggregation: `best of ${rounds} rounds per server (${ttftReps} lone image request(s) and one batch under load per round), ` +
    'both servers running, requests alternating, order swapped every round, fresh processes per round',
  metricInfo,
  samples,
  extra: {
    'image prompt tokens (hearth / llama-server)': `${counts('hearth')} / ${counts('llama-server')}`,
    'image': `deps/llama.cpp/tools/mtmd/test-1.jpeg (${imageBytes.length} bytes) as a data URL, after a short question that differs per request`,
  },
  notes: [
    `under load: ${streams} completions streams (a per-request number and the same 24 English words) are all streaming, then ${imagesUnderLoad} ` +
      `chat request(s) with the image are sent at once (${imageGen} tokens each); the text streams are hung up on once every image is answered`,
    'the window: first image request sent -> last image\'s first token; gaps: between consecutive text chunks of one stream, ' +
      'counted when they overlap the window, pooled over the streams; text tok/s: text chunks that arrived in the window / its length',
    `mean image prompt tokens: hearth ${mean(imagePromptTokens.hearth).toFixed(1)}, llama-server ${mean(imagePromptTokens['llama-server']).toFixed(1)} ` +
      '(hearth joins content parts with a newline also next to an image, llama-server adds none there: one token)',
  ],
  startedAt,
})
console.log(consoleTable(result))
log(SCENARIO, `wrote ${writeResult(result, o.out)}`)

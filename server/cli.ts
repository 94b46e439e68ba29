// `hearth serve`: flags, environment variables, the load progress bar, and a clean drain on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { defaultModelPath } from '../lib/model.js'
import { packageRoot } from '../lib/native.js'
import { startServer } from './app.js'
import { defaultConfig, type ServerConfig } from './state.js'

const USAGE = `Usage: hearth serve [options]

Serves a GGUF model over an OpenAI-compatible API (default http://127.0.0.1:1234/v1).

Options (environment variable in brackets):
  --model FILE         GGUF model to serve; default the built-in model      [HEARTH_MODEL]
  --host HOST          address to bind; default 127.0.0.1                     [HEARTH_HOST]
  --port N             port; default 1234 (0 picks a free one)                [HEARTH_PORT]
  --ctx N              tokens per sequence (prompt + output); default the
                       model's trained context, at most 4096                  [HEARTH_CTX]
  --parallel N         sequences decoded together; default 8                 [HEARTH_PARALLEL]
  --kv-size N          KV cache cells shared by all sequences;
                       default ctx x parallel, at most 16384                  [HEARTH_KV_SIZE]
  --batch N            tokens per decode step; default 512                    [HEARTH_BATCH]
  --threads N          CPU threads; default all CPUs                          [HEARTH_THREADS]
  --gpu-layers N       layers offloaded in a GPU build; default all           [HEARTH_GPU_LAYERS]
  --max-queue N        requests that may wait for a slot; default 64         [HEARTH_MAX_QUEUE]
  --no-prompt-cache    do not reuse KV cells across requests                  [HEARTH_PROMPT_CACHE=0]
  --mmproj FILE        multimodal projector (images, audio) for the model;
                       default an mmproj-*.gguf beside the model              [HEARTH_MMPROJ]
  --no-mmproj          load no projector, even one beside the model           [HEARTH_MMPROJ=0]
  --max-media-per-request N
                       images and audio clips in one request; default 8       [HEARTH_MAX_MEDIA_PER_REQUEST]
  --max-media-bytes BYTES
                       largest image or audio file; default 20971520          [HEARTH_MAX_MEDIA_BYTES]
  --chat-template-file FILE
                       Jinja chat template to use instead of the model's      [HEARTH_CHAT_TEMPLATE_FILE]
  --api-key KEY        require "Authorization: Bearer KEY" on /v1 routes      [HEARTH_API_KEY]
  --cors ORIGINS       browser origins allowed to call, comma-separated, or *;
                       other origins are refused (403)                        [HEARTH_CORS]
  --allowed-hosts HOSTS
                       Host names served besides this machine's own, comma-
                       separated; .example.com with subdomains; * any         [HEARTH_ALLOWED_HOSTS]
  --metrics-key KEY    require "Authorization: Bearer KEY" on /metrics;
                       default the API key when one is set                    [HEARTH_METRICS_KEY]
  --body-limit BYTES   largest request body; default 16777216                 [HEARTH_BODY_LIMIT]
  --body-timeout SECS  time to receive a request's head and body; default 30  [HEARTH_BODY_TIMEOUT]
  --responses N        stored responses kept for previous_response_id; 1000  [HEARTH_RESPONSES]
  --responses-ttl S    seconds a stored response is kept; default 3600        [HEARTH_RESPONSES_TTL]
  --responses-db FILE  SQLite file stored responses are kept in; :memory:
                       keeps them in memory only; default responses.sqlite
                       in the data folder (below)                             [HEARTH_RESPONSES_DB]
  --embeddings-queue N embedding inputs that may wait; default 8192           [HEARTH_EMBEDDINGS_QUEUE]
  --quiet              no request log                                         [HEARTH_QUIET=1]
  -h, --help           this help
  -v, --version        hearth's version

The data folder is $HEARTH_DATA_DIR, else $XDG_DATA_HOME/hearth or ~/.local/share/hearth
(macOS: ~/Library/Application Support/hearth, Windows: %APPDATA%\\hearth).
`

function intOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined || raw === '') return undefined
  const v = Number(raw)
  if (!Number.isInteger(v) || v < min) throw new Error(`hearth: --${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  return v
}

/** A positive number of seconds (fractions allowed) as milliseconds. */
function secondsOption(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  const v = Number(raw)
  if (!Number.isFinite(v) || v <= 0 || v > 86400) throw new Error(`hearth: --${name} must be a number of seconds > 0, got ${JSON.stringify(raw)}`)
  return Math.round(v * 1000)
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      ctx: { type: 'string' },
      parallel: { type: 'string' },
      'kv-size': { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      'gpu-layers': { type: 'string' },
      'max-queue': { type: 'string' },
      'no-prompt-cache': { type: 'boolean' },
      'chat-template-file': { type: 'string' },
      mmproj: { type: 'string' },
      'no-mmproj': { type: 'boolean' },
      'max-media-per-request': { type: 'string' },
      'max-media-bytes': { type: 'string' },
      'api-key': { type: 'string' },
      cors: { type: 'string' },
      'allowed-hosts': { type: 'string' },
      'metrics-key': { type: 'string' },
      'body-limit': { type: 'string' },
      'body-timeout': { type: 'string' },
      responses: { type: 'string' },
      'responses-ttl': { type: 'string' },
      'responses-db': { type: 'string' },
      'embeddings-queue': { type: 'string' },
      quiet: { type: 'boolean' },
    },
  })
  const pick = (flag: string | undefined, name: string) => flag ?? env[name]
  const modelOptions: ServerConfig['modelOptions'] = {}
  const set = <K extends keyof ServerConfig['modelOptions']>(k: K, v: ServerConfig['modelOptions'][K] | undefined) => {
    if (v !== undefined) modelOptions[k] = v
  }
  set('contextSize', intOption('ctx', pick(values.ctx, 'HEARTH_CTX'), 1))
  set('parallel', intOption('parallel', pick(values.parallel, 'HEARTH_PARALLEL'), 1))
  set('kvSize', intOption('kv-size', pick(values['kv-size'], 'HEARTH_KV_SIZE'), 1))
  set('batchSize', intOption('batch', pick(values.batch, 'HEARTH_BATCH'), 1))
  set('threads', intOption('threads', pick(values.threads, 'HEARTH_THREADS'), 1))
  set('gpuLayers', intOption('gpu-layers', pick(values['gpu-layers'], 'HEARTH_GPU_LAYERS'), -1))
  set('maxQueue', intOption('max-queue', pick(values['max-queue'], 'HEARTH_MAX_QUEUE'), 0))
  set('maxEmbeddingQueue', intOption('embeddings-queue', pick(values['embeddings-queue'], 'HEARTH_EMBEDDINGS_QUEUE'), 1))
  if (values['no-prompt-cache'] || env.HEARTH_PROMPT_CACHE === '0') modelOptions.promptCache = false
  const mmproj = pick(values.mmproj, 'HEARTH_MMPROJ')
  if (values['no-mmproj'] || mmproj === '0') modelOptions.projector = false
  else if (mmproj) modelOptions.projector = mmproj
  const maxPerRequest = intOption('max-media-per-request', pick(values['max-media-per-request'], 'HEARTH_MAX_MEDIA_PER_REQUEST'), 0)
  const maxBytes = intOption('max-media-bytes', pick(values['max-media-bytes'], 'HEARTH_MAX_MEDIA_BYTES'), 1)
  if (maxPerRequest !== undefined || maxBytes !== undefined) {
    modelOptions.media = { ...(maxPerRequest !== undefined ? { maxPerRequest } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) }
  }
  const templateFile = pick(values['chat-template-file'], 'HEARTH_CHAT_TEMPLATE_FILE')
  if (templateFile) {
    try {
      modelOptions.chatTemplate = readFileSync(templateFile, 'utf8')
    } catch (err) {
      throw new Error(`hearth: cannot read --chat-template-file ${templateFile}: ${(err as Error).message}`)
    }
  }
  const list = (raw: string | undefined) => (raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : [])
  return {
    ...defaultConfig,
    modelPath: pick(values.model, 'HEARTH_MODEL') ?? defaultModelPath,
    host: pick(values.host, 'HEARTH_HOST') ?? defaultConfig.host,
    port: intOption('port', pick(values.port, 'HEARTH_PORT'), 0) ?? defaultConfig.port,
    modelOptions,
    apiKey: pick(values['api-key'], 'HEARTH_API_KEY') || null,
    cors: list(pick(values.cors, 'HEARTH_CORS')),
    allowedHosts: list(pick(values['allowed-hosts'], 'HEARTH_ALLOWED_HOSTS')),
    metricsKey: pick(values['metrics-key'], 'HEARTH_METRICS_KEY') || null,
    bodyLimit: intOption('body-limit', pick(values['body-limit'], 'HEARTH_BODY_LIMIT'), 1) ?? defaultConfig.bodyLimit,
    bodyTimeoutMs: secondsOption('body-timeout', pick(values['body-timeout'], 'HEARTH_BODY_TIMEOUT')) ?? defaultConfig.bodyTimeoutMs,
    responseStoreSize: intOption('responses', pick(values.responses, 'HEARTH_RESPONSES'), 0) ?? defaultConfig.responseStoreSize,
    responseTtlMs: (intOption('responses-ttl', pick(values['responses-ttl'], 'HEARTH_RESPONSES_TTL'), 1) ?? defaultConfig.responseTtlMs / 1000) * 1000,
    responsesDb: pick(values['responses-db'], 'HEARTH_RESPONSES_DB') || null,
    logRequests: !(values.quiet || env.HEARTH_QUIET === '1'),
  }
}

function progressBar(p: number): void {
  const width = 30
  const done = Math.round(p * width)
  process.stdout.write(`\rloading [${'#'.repeat(done)}${' '.repeat(width - done)}] ${Math.round(p * 100)}%`)
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === '-v' || command === '--version') {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }
    console.log(pkg.version)
    return
  }
  if (command !== 'serve' || rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(USAGE)
    if (command !== 'serve' && command !== '-h' && command !== '--help' && command !== undefined) process.exitCode = 2
    return
  }
  const config = parseConfig(rest)
  const tty = process.stdout.isTTY === true
  const server = await startServer(config, tty ? progressBar : undefined)
  console.log(`hearth: listening on ${server.url} (loading ${config.modelPath})`)
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      console.log(`hearth: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    const busy = server.state.model?.stats()
    console.log(`hearth: ${signal}: draining ${busy ? busy.active + busy.queued : 0} requests`)
    void server.close().then(() => process.exit(0))
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    const model = await server.ready
    if (tty) process.stdout.write('\n')
    const c = model.context
    console.log(
      `hearth: serving ${model.id} (${model.facts.description}, ${c.nSeqMax} parallel, ${model.scheduler.options.nCtxSeq} tokens per sequence, ` +
        `${c.nCtx} KV cells, ${c.nThreads} threads) at ${server.url}/v1`,
    )
  } catch (err) {
    if (tty) process.stdout.write('\n')
    console.error(`hearth: cannot load ${config.modelPath}: ${(err as Error).message}`)
    await server.close()
    process.exit(1)
  }
}

// `hearth serve`: flags, environment variables, the load progress bar, and a clean drain on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { parseArgs } from 'node:util'
import { MAX_TTL_MS } from '../lib/model-registry.js'
import { defaultModelPath } from '../lib/model.js'
import { MEDIA_DEFAULTS } from '../lib/chat-media.js'
import { OutboundPolicy } from '../lib/outbound-fetch.js'
import { packageRoot } from '../lib/native.js'
import { startServer } from './app.js'
import { modelsCommand } from './cli-models.js'
import { KV_FLAG_OPTIONS, KV_FLAGS_USAGE, kvFlagOptions } from './kv-flags.js'
import { defaultConfig, defaultModelsDir, type ServerConfig } from './state.js'

const USAGE = `Usage: hearth serve [options]
       hearth ls|ps|load|unload ... (hearth ls --help)

Serves GGUF models over an OpenAI-compatible API (default http://127.0.0.1:1234/v1).

Options (environment variable in brackets):
  --model FILE         GGUF model loaded at start and kept, answering requests
                       that name no model; default the built-in model        [HEARTH_MODEL]
  --host HOST          address to bind; default 127.0.0.1                     [HEARTH_HOST]
  --port N             port; default 1234 (0 picks a free one)                [HEARTH_PORT]
  --models-dir DIR     folder of GGUF models (also publisher/repo/file.gguf
                       and Hugging Face cache layouts); repeatable; default
                       models/ in the data folder (below)                     [HEARTH_MODELS_DIR]
  --no-jit             do not load models when a request names them           [HEARTH_JIT=0]
  --ttl S              idle seconds before a JIT-loaded model is unloaded;
                       default 3600; 0 never                                  [HEARTH_TTL]
  --max-models N       JIT-loaded models kept at once; default 1              [HEARTH_MAX_MODELS]
  --no-auto-evict      never unload a JIT-loaded model for another one        [HEARTH_AUTO_EVICT=0]
  --max-memory SIZE    memory all loaded models may take (bytes, or with K, M,
                       G, T); default free memory at start less 10% of RAM  [HEARTH_MAX_MEMORY]
  --alias NAME=ID      answer requests for NAME with model ID; NAME * takes
                       every unknown name; repeatable                         [HEARTH_ALIAS]
  --ctx N              tokens per sequence (prompt + output); default the
                       model's trained context, at most 4096                  [HEARTH_CTX]
  --parallel N         sequences decoded together; default 8                 [HEARTH_PARALLEL]
  --kv-size N          KV cache cells in all; default ctx x parallel, at most
                       16384 when unified                                     [HEARTH_KV_SIZE]
${KV_FLAGS_USAGE}  --batch N            tokens per decode step; default 2048                   [HEARTH_BATCH]
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
  --allow-remote-media fetch http(s) image URLs, through the same outbound
                       policy as MCP (--fetch-allow; public addresses only
                       by default, 10 s and --max-media-bytes caps)          [HEARTH_ALLOW_REMOTE_MEDIA=1]
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
  --allow-mcp          let /v1/responses call remote MCP servers (mcp tools) [HEARTH_ALLOW_MCP=1]
  --fetch-allow HOSTS  what hearth may connect to for a request (MCP servers,
                       remote images):
                       hosts, .domains with subdomains, addresses, a.b.c.d/n
                       ranges, * any public address; comma-separated; default
                       public addresses only (loopback, private, link-local
                       refused)                                               [HEARTH_FETCH_ALLOW]
  --mcp-auto-approve   MCP calls run without an approval request (trusted
                       servers only)                                          [HEARTH_MCP_AUTO_APPROVE=1]
  --mcp-timeout SECS   limit for connecting, listing and each call; default 30 [HEARTH_MCP_TIMEOUT]
  --max-tool-calls N   MCP calls in one response; default 8                   [HEARTH_MAX_TOOL_CALLS]
  --mcp-max-tools N    tools of one MCP server given to the model; default 64 [HEARTH_MCP_MAX_TOOLS]
  --mcp-max-result BYTES
                       largest output of one MCP call; default 1048576        [HEARTH_MCP_MAX_RESULT]
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

/** "8G", "512M", "1073741824" as bytes. */
export function sizeOption(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(raw.trim())
  const v = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN
  if (!(v >= 2 ** 20)) throw new Error(`hearth: --${name} must be a size of at least 1M (e.g. 8G, 512M), got ${JSON.stringify(raw)}`)
  return Math.floor(v)
}

/** NAME=ID pairs (NAME may be *). */
function aliasOption(raw: string[]): [string, string][] {
  return raw.map((a) => {
    const i = a.indexOf('=')
    if (i <= 0 || i === a.length - 1) throw new Error(`hearth: --alias must be NAME=ID, got ${JSON.stringify(a)}`)
    return [a.slice(0, i).trim(), a.slice(i + 1).trim()]
  })
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      'models-dir': { type: 'string', multiple: true },
      'no-jit': { type: 'boolean' },
      ttl: { type: 'string' },
      'max-models': { type: 'string' },
      'no-auto-evict': { type: 'boolean' },
      'max-memory': { type: 'string' },
      alias: { type: 'string', multiple: true },
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
      'allow-remote-media': { type: 'boolean' },
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
      'allow-mcp': { type: 'boolean' },
      'fetch-allow': { type: 'string' },
      'mcp-auto-approve': { type: 'boolean' },
      'mcp-timeout': { type: 'string' },
      'max-tool-calls': { type: 'string' },
      'mcp-max-tools': { type: 'string' },
      'mcp-max-result': { type: 'string' },
      ...KV_FLAG_OPTIONS,
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
  Object.assign(modelOptions, kvFlagOptions(values, env))
  const list = (raw: string | undefined) => (raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : [])
  const mmproj = pick(values.mmproj, 'HEARTH_MMPROJ')
  if (values['no-mmproj'] || mmproj === '0') modelOptions.projector = false
  else if (mmproj) modelOptions.projector = mmproj
  const maxPerRequest = intOption('max-media-per-request', pick(values['max-media-per-request'], 'HEARTH_MAX_MEDIA_PER_REQUEST'), 0)
  const maxBytes = intOption('max-media-bytes', pick(values['max-media-bytes'], 'HEARTH_MAX_MEDIA_BYTES'), 1)
  if (maxPerRequest !== undefined || maxBytes !== undefined) {
    modelOptions.media = { ...(maxPerRequest !== undefined ? { maxPerRequest } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) }
  }
  if (values['allow-remote-media'] || env.HEARTH_ALLOW_REMOTE_MEDIA === '1') {
    // resolve first, then connect; every redirect hop checked; a download past --max-media-bytes is cut off
    const policy = new OutboundPolicy({ allow: list(pick(values['fetch-allow'], 'HEARTH_FETCH_ALLOW')), timeoutMs: 10_000, maxBytes: maxBytes ?? MEDIA_DEFAULTS.maxBytes })
    modelOptions.media = { ...modelOptions.media, fetch: async (url, signal) => (await policy.fetchBytes(url, signal ? { signal } : {})).bytes }
  }
  const templateFile = pick(values['chat-template-file'], 'HEARTH_CHAT_TEMPLATE_FILE')
  if (templateFile) {
    try {
      modelOptions.chatTemplate = readFileSync(templateFile, 'utf8')
    } catch (err) {
      throw new Error(`hearth: cannot read --chat-template-file ${templateFile}: ${(err as Error).message}`)
    }
  }
  const dm = defaultConfig.mcp
  const mcp: ServerConfig['mcp'] = {
    enabled: values['allow-mcp'] === true || env.HEARTH_ALLOW_MCP === '1',
    fetchAllow: list(pick(values['fetch-allow'], 'HEARTH_FETCH_ALLOW')),
    autoApprove: values['mcp-auto-approve'] === true || env.HEARTH_MCP_AUTO_APPROVE === '1',
    timeoutMs: secondsOption('mcp-timeout', pick(values['mcp-timeout'], 'HEARTH_MCP_TIMEOUT')) ?? dm.timeoutMs,
    maxToolCalls: intOption('max-tool-calls', pick(values['max-tool-calls'], 'HEARTH_MAX_TOOL_CALLS'), 1) ?? dm.maxToolCalls,
    maxTools: intOption('mcp-max-tools', pick(values['mcp-max-tools'], 'HEARTH_MCP_MAX_TOOLS'), 1) ?? dm.maxTools,
    maxResultBytes: intOption('mcp-max-result', pick(values['mcp-max-result'], 'HEARTH_MCP_MAX_RESULT'), 1) ?? dm.maxResultBytes,
    cacheMs: dm.cacheMs,
  }
  // a mistyped entry stops the start, naming it
  if (mcp.fetchAllow.length) new OutboundPolicy({ allow: mcp.fetchAllow })
  const dirs = values['models-dir'] ?? (env.HEARTH_MODELS_DIR ? env.HEARTH_MODELS_DIR.split(delimiter).filter(Boolean) : [])
  const ttl = intOption('ttl', pick(values.ttl, 'HEARTH_TTL'), 0)
  if (ttl !== undefined && ttl * 1000 > MAX_TTL_MS) throw new Error(`hearth: --ttl must be at most ${Math.floor(MAX_TTL_MS / 1000)} seconds`)
  const aliases = values.alias ?? (env.HEARTH_ALIAS ? list(env.HEARTH_ALIAS) : [])
  return {
    ...defaultConfig,
    modelsDirs: dirs.length > 0 ? dirs : null,
    jit: !(values['no-jit'] || env.HEARTH_JIT === '0'),
    ttlMs: ttl === undefined ? defaultConfig.ttlMs : ttl === 0 ? null : ttl * 1000,
    maxModels: intOption('max-models', pick(values['max-models'], 'HEARTH_MAX_MODELS'), 1) ?? defaultConfig.maxModels,
    autoEvict: !(values['no-auto-evict'] || env.HEARTH_AUTO_EVICT === '0'),
    maxMemoryBytes: sizeOption('max-memory', pick(values['max-memory'], 'HEARTH_MAX_MEMORY')) ?? null,
    aliases: aliasOption(aliases),
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
    mcp,
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
  if (command === 'ls' || command === 'ps' || command === 'load' || command === 'unload') {
    process.exitCode = await modelsCommand(command, rest)
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
    let busy = 0
    for (const m of server.state.registry.loaded()) busy += m.kind === 'llm' ? m.stats().active + m.stats().queued : m.embeddingStats().requests
    console.log(`hearth: ${signal}: draining ${busy} requests`)
    void server.close().then(() => process.exit(0))
  }
  // what the registry does, in the log: JIT loads, TTL expiry, evictions
  server.state.registry.subscribe((e) => {
    const mb = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`
    if (e.kind === 'progress' && tty && server.state.registry.startId !== null && e.id !== server.state.registry.startId) {
      process.stdout.write(`\rloading ${e.id} [${'#'.repeat(Math.round(e.progress * 30)).padEnd(30)}] ${Math.round(e.progress * 100)}%${e.progress >= 1 ? '\n' : ''}`)
    } else if (e.kind === 'loading' && e.how !== 'start') console.log(`hearth: loading ${e.id} (${e.how === 'jit' ? 'a request named it' : 'load request'})`)
    else if (e.kind === 'loaded' && e.how !== 'start') console.log(`hearth: loaded ${e.id} in ${(e.ms / 1000).toFixed(1)} s (${mb(e.bytes)})`)
    else if (e.kind === 'load-failed') console.log(`hearth: cannot load ${e.id}: ${e.error.message}`)
    else if (e.kind === 'unloaded' && e.reason !== 'close') console.log(`hearth: unloaded ${e.id} (${{ request: 'unload request', ttl: 'idle TTL', evict: 'auto-evict', memory: 'to make room', close: '' }[e.reason]})`)
  })
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    const model = await server.ready
    if (tty) process.stdout.write('\n')
    if (model?.kind === 'llm') {
      const c = model.context
      console.log(
        `hearth: serving ${model.id} (${model.facts.description}, ${c.nSeqMax} parallel, ${model.scheduler.options.nCtxSeq} tokens per sequence, ` +
          `${c.nCtx} KV cells, ${c.nThreads} threads) at ${server.url}/v1`,
      )
    } else if (model) console.log(`hearth: serving ${model.id} (embeddings) at ${server.url}/v1`)
    const r = server.state.registry
    const available = r.snapshot().length
    const dirs = config.modelsDirs ?? [defaultModelsDir()]
    console.log(`hearth: ${available} models available from ${dirs.join(', ')}; JIT loading ${r.jit ? 'on' : 'off'}` + (r.jit ? `, auto-evict ${r.autoEvict ? `on (at most ${r.maxModels})` : 'off'}` : ''))
    for (const w of r.warnings) console.log(`hearth: ${w}`)
  } catch (err) {
    if (tty) process.stdout.write('\n')
    console.error(`hearth: cannot load ${config.modelPath}: ${(err as Error).message}`)
    await server.close()
    process.exit(1)
  }
}

// The model lists and LM Studio's v1 REST model API:
//   GET  /v1/models, /v1/models/{id}   OpenAI's list, plus hearth's own fields (state, type, architecture ...)
//   GET  /api/v1/models                LM Studio's list (available models with their loaded instances)
//   POST /api/v1/models/load           {model, config?, ttl?, stream?}; `stream: true` answers with SSE progress
//   POST /api/v1/models/unload         {instance_id}
// hearth keeps one instance per model: its instance id is the model's id, and loading a loaded model returns it.
import { HearthError, invalidParam, toHearthError } from '../lib/errors.js'
import type { LoadConfig, ModelView, ServedModel } from '../lib/model-registry.js'
import type { Reply } from './http.js'
import { ttlOption, type ServerState } from './state.js'

type View = ModelView<ServedModel>

/** Tokens per sequence of a loaded model (an embedding model: per input); null when not loaded. */
function loadedContextLength(m: ServedModel | null): number | null {
  if (!m) return null
  return m.kind === 'llm' ? m.scheduler.options.nCtxSeq : m.context.nCtx
}

function stateFields(v: View): Record<string, unknown> {
  switch (v.state) {
    case 'loading':
      return { state: 'loading', progress: Math.round(v.progress * 100) / 100 }
    case 'error':
      return { state: 'error', error: v.error?.message ?? 'load failed' }
    case 'loaded':
    case 'unloading':
      return { state: 'loaded' }
    default:
      return v.scanned.error ? { state: 'error', error: v.scanned.error } : { state: 'not-loaded' }
  }
}

function capabilities(v: View): string[] {
  const info = v.scanned.info
  if (!info) return []
  if (info.type === 'embeddings') return ['embeddings']
  return ['completion', ...(info.toolUse ? ['tool_use'] : []), ...(info.reasoning ? ['reasoning'] : []), ...media(v)]
}

/** What media a model reads: a loaded one, what its projector says; else whether a projector pairs with it. */
function media(v: View): string[] {
  const facts = v.model && 'projector' in v.model ? v.model.projector?.facts : undefined
  if (facts) return [...(facts.vision ? ['vision'] : []), ...(facts.audio ? ['audio'] : [])]
  return v.model === null && v.scanned.projector !== null ? ['vision'] : []
}

/** One /v1/models entry: OpenAI's four fields, then hearth's (clients ignore them; the README lists them). */
function openaiModel(state: ServerState, v: View) {
  const info = v.scanned.info
  return {
    id: v.id,
    object: 'model',
    created: state.startedAt,
    owned_by: v.id.includes('/') ? v.id.split('/')[0]! : 'hearth',
    ...stateFields(v),
    type: info?.type ?? null,
    architecture: info?.architecture ?? null,
    quantization: info?.quantization ?? null,
    max_context_length: info?.maxContextLength ?? null,
    loaded_context_length: loadedContextLength(v.model),
    capabilities: capabilities(v),
  }
}

/** /v1/models: the loaded (and loading) models; with JIT on, every available model (as LM Studio lists them). */
export async function listModels(state: ServerState, reply: Reply): Promise<void> {
  const views = await state.registry.list()
  const shown = state.registry.jit ? views : views.filter((v) => v.state !== 'not-loaded' && !(v.state === 'error' && !v.model))
  reply.json(200, { object: 'list', data: shown.map((v) => openaiModel(state, v)) })
}

export async function getModel(state: ServerState, reply: Reply, name: string): Promise<void> {
  const id = await state.registry.idOf(name)
  const v = id ? state.registry.view(id) : null
  if (!v) {
    const ids = state.registry.snapshot().map((x) => x.id)
    throw new HearthError('model_not_found', `The model \`${name}\` does not exist. Available models: ${ids.slice(0, 20).join(', ') || 'none'}`, 'model')
  }
  reply.json(200, openaiModel(state, v))
}

/** A load's config as LM Studio's REST API names it. */
function restConfig(v: View): Record<string, unknown> {
  const m = v.model
  if (!m) return {}
  if (m.kind === 'embeddings') return { context_length: m.context.nCtx }
  return {
    context_length: m.scheduler.options.nCtxSeq,
    eval_batch_size: m.context.nBatch,
    ...(v.config.flashAttention !== undefined ? { flash_attention: v.config.flashAttention } : {}),
    parallel: m.context.nSeqMax,
  }
}

/** One /api/v1/models entry (LM Studio's shape). */
function restModel(v: View) {
  const info = v.scanned.info
  const slash = v.id.indexOf('/')
  const m = v.model
  return {
    type: info?.type === 'embeddings' ? 'embedding' : 'llm',
    publisher: slash > 0 ? v.id.slice(0, slash) : 'hearth',
    key: v.id,
    display_name: info?.name || v.id.slice(slash + 1),
    architecture: info?.architecture ?? null,
    quantization: info ? { name: info.quantization, bits_per_weight: info.bitsPerWeight } : null,
    size_bytes: v.scanned.sizeBytes,
    params_string: info?.paramsString ?? null,
    loaded_instances: m ? [{ id: v.id, config: restConfig(v) }] : [],
    max_context_length: info?.maxContextLength ?? null,
    format: 'gguf',
    capabilities: { vision: v.scanned.projector !== null, trained_for_tool_use: info?.toolUse ?? false },
    // hearth's own
    ...stateFields(v),
    ...(m
      ? {
          how_loaded: v.how,
          ttl_seconds: v.ttlMs === null ? null : Math.round(v.ttlMs / 1000),
          idle_seconds: v.idleMs === null ? null : Math.floor(v.idleMs / 1000),
          memory_bytes: v.memoryBytes,
          ...(m.kind === 'llm' ? { slots: m.context.nSeqMax, active: m.stats().active, queued: m.stats().queued } : { queued: m.embeddingStats().requests }),
        }
      : {}),
  }
}

export async function restListModels(state: ServerState, reply: Reply): Promise<void> {
  const views = await state.registry.list()
  reply.json(200, { models: views.map(restModel) })
}

const LOAD_FIELDS = new Set(['model', 'config', 'ttl', 'stream', 'echo_load_config'])
const CONFIG_FIELDS = new Set(['context_length', 'eval_batch_size', 'flash_attention', 'parallel', 'num_experts', 'offload_kv_cache_to_gpu'])

function positiveInt(v: unknown, param: string): number {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2 ** 24)) throw invalidParam(param, `${param} must be an integer between 1 and ${2 ** 24}`)
  return v
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

interface LoadRequest {
  model: string
  config: LoadConfig
  ttlMs: number | null
  stream: boolean
}

function parseLoad(raw: unknown): LoadRequest {
  if (!isObject(raw)) throw new HearthError('invalid_parameter', 'the body must be a JSON object')
  for (const k of Object.keys(raw)) if (!LOAD_FIELDS.has(k)) throw new HearthError('unknown_parameter', `Unrecognized request argument supplied: ${k}`, k)
  if (typeof raw.model !== 'string' || raw.model === '') throw invalidParam('model', 'model must be a model key (GET /api/v1/models)')
  if (raw.stream !== undefined && typeof raw.stream !== 'boolean') throw invalidParam('stream', 'stream must be a boolean')
  if (raw.echo_load_config !== undefined && typeof raw.echo_load_config !== 'boolean') throw invalidParam('echo_load_config', 'echo_load_config must be a boolean')
  if (raw.ttl !== undefined && raw.ttl !== null && typeof raw.ttl !== 'number') throw invalidParam('ttl', 'ttl must be a number of seconds')
  const config: LoadConfig = {}
  if (raw.config !== undefined) {
    if (!isObject(raw.config)) throw invalidParam('config', 'config must be an object')
    const c = raw.config
    for (const k of Object.keys(c)) {
      if (!CONFIG_FIELDS.has(k)) throw new HearthError('unknown_parameter', `Unrecognized load config field: ${k}`, `config.${k}`)
    }
    for (const k of ['num_experts', 'offload_kv_cache_to_gpu']) {
      if (c[k] !== undefined) throw new HearthError('unsupported_parameter', `config.${k} is not supported by hearth`, `config.${k}`)
    }
    if (c.context_length !== undefined) config.contextLength = positiveInt(c.context_length, 'config.context_length')
    if (c.eval_batch_size !== undefined) config.evalBatchSize = positiveInt(c.eval_batch_size, 'config.eval_batch_size')
    if (c.parallel !== undefined) config.parallel = positiveInt(c.parallel, 'config.parallel')
    if (c.flash_attention !== undefined) {
      if (typeof c.flash_attention !== 'boolean') throw invalidParam('config.flash_attention', 'config.flash_attention must be a boolean')
      config.flashAttention = c.flash_attention
    }
  }
  return { model: raw.model, config, ttlMs: ttlOption(raw.ttl as number | null | undefined), stream: raw.stream === true }
}

/** POST /api/v1/models/load; with `stream: true`, SSE: `progress` events, then `loaded` (the answer) or `error`. */
export async function restLoad(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const req = parseLoad(raw)
  const id = (await state.registry.idOf(req.model)) ?? req.model
  const load = () => state.registry.load(req.model, req.config, req.ttlMs !== null ? { ttlMs: req.ttlMs } : {})
  const answer = (r: { id: string; loadTimeMs: number }) => {
    const v = state.registry.view(r.id)
    return { model_instance_id: r.id, config: v ? restConfig(v) : {}, load_time_seconds: Math.round(r.loadTimeMs) / 1000 }
  }
  if (!req.stream) {
    reply.json(200, answer(await load()))
    return
  }
  const sse = reply.sse()
  let last = -1
  const stop = state.registry.subscribe((e) => {
    if (e.kind !== 'progress' || e.id !== id) return
    const p = Math.floor(e.progress * 100) / 100
    if (p === last) return
    last = p
    sse.send({ model_instance_id: id, progress: p }, 'progress')
  })
  try {
    sse.send(answer(await load()), 'loaded')
  } catch (err) {
    const e = toHearthError(err)
    sse.send({ error: { message: e.message, type: e.type, param: e.param, code: e.code } }, 'error')
  } finally {
    stop()
    sse.end()
  }
}

/** POST /api/v1/models/unload {instance_id}: waits for the model's running and queued requests, then frees it. */
export async function restUnload(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  if (!isObject(raw)) throw new HearthError('invalid_parameter', 'the body must be a JSON object')
  for (const k of Object.keys(raw)) if (k !== 'instance_id') throw new HearthError('unknown_parameter', `Unrecognized request argument supplied: ${k}`, k)
  if (typeof raw.instance_id !== 'string' || raw.instance_id === '') throw invalidParam('instance_id', 'instance_id must be a loaded instance id (GET /api/v1/models)')
  const id = await state.registry.unload(raw.instance_id)
  reply.json(200, { instance_id: id })
}

// GET /health, /metrics, /v1/models and /v1/models/{id}.
import { HearthError } from '../lib/errors.js'
import type { Model } from '../lib/model.js'
import type { Reply } from './http.js'
import type { ServerState } from './state.js'

export function health(state: ServerState, reply: Reply): void {
  if (state.model && !state.draining) reply.json(200, { status: 'ok', model: state.model.id })
  else if (state.loadError) reply.json(500, { status: 'error', error: state.loadError.message })
  else reply.json(503, { status: state.draining ? 'shutting_down' : 'loading', progress: state.loadProgress })
}

export function metrics(state: ServerState, reply: Reply): void {
  const s = state.model?.stats()
  const body = state.metrics.render({
    active: s?.active ?? 0,
    queued: s?.queued ?? 0,
    usedCells: s?.usedCells ?? 0,
    cells: s?.nCtx ?? 0,
    loaded: state.model !== null,
    embeddings: state.model?.embeddingStats() ?? { requests: 0, inputs: 0, chunks: 0, aborted: 0 },
  })
  reply.send(200, body, 'text/plain; version=0.0.4')
}

function modelObject(state: ServerState, m: Model) {
  return { id: m.id, object: 'model', created: state.startedAt, owned_by: 'hearth', ...mediaCapabilities(m) }
}

/** What media the model reads (hearth's own field, which OpenAI clients ignore): present only with a projector. */
function mediaCapabilities(m: Model): { capabilities?: string[] } {
  const f = m.projector?.facts
  if (!f) return {}
  return { capabilities: [...(f.vision ? ['vision'] : []), ...(f.audio ? ['audio'] : [])] }
}

// the list of a loaded model never changes: its JSON is made once
const listBodies = new WeakMap<Model, string>()

export function listModels(state: ServerState, reply: Reply): void {
  const m = state.model
  if (m) {
    let body = listBodies.get(m)
    if (body === undefined) listBodies.set(m, (body = JSON.stringify({ object: 'list', data: [modelObject(state, m)] })))
    reply.send(200, body, 'application/json')
    return
  }
  // while it loads, the model is listed with its progress (hearth's own fields, which OpenAI clients ignore)
  const loading = state.loadError
    ? { state: 'error', error: state.loadError.message }
    : { state: 'loading', progress: Math.round(state.loadProgress * 100) / 100 }
  reply.json(200, { object: 'list', data: [{ id: state.configuredModelId, object: 'model', created: state.startedAt, owned_by: 'hearth', ...loading }] })
}

export function getModel(state: ServerState, reply: Reply, id: string): void {
  const m = state.model
  if (!m || !state.modelNames(m).includes(id)) {
    throw new HearthError('model_not_found', `The model \`${id}\` does not exist or is not loaded`, 'model')
  }
  reply.json(200, modelObject(state, m))
}

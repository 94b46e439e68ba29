// GET /health and /metrics. The model lists are server/models-api.ts.
import type { ServerState } from './state.js'
import type { Reply } from './http.js'

export function health(state: ServerState, reply: Reply): void {
  const start = state.startStatus()
  if (state.draining) reply.json(503, { status: 'shutting_down' })
  else if (start.state === 'loaded') reply.json(200, { status: 'ok', model: start.id })
  else if (start.state === 'error') reply.json(500, { status: 'error', error: start.error })
  else reply.json(503, { status: 'loading', progress: start.progress })
}

export function metrics(state: ServerState, reply: Reply): void {
  const g = { active: 0, queued: 0, usedCells: 0, cells: 0, loaded: state.registry.loaded().length > 0, embeddings: { requests: 0, inputs: 0, chunks: 0, aborted: 0 }, ramCache: { entries: 0, bytes: 0, hits: 0, misses: 0, evictions: 0, saves: 0, restoredTokens: 0 } }
  for (const m of state.registry.loaded()) {
    if (m.kind === 'llm') {
      const s = m.stats()
      g.active += s.active
      g.queued += s.queued
      g.usedCells += s.usedCells
      g.cells += s.nCtx
      if (s.ramCache) for (const k of Object.keys(g.ramCache) as (keyof typeof g.ramCache)[]) g.ramCache[k] += s.ramCache[k]
    }
    const e = m.embeddingStats()
    g.embeddings.requests += e.requests
    g.embeddings.inputs += e.inputs
    g.embeddings.chunks += e.chunks
    g.embeddings.aborted += e.aborted
  }
  reply.send(200, state.metrics.render(g), 'text/plain; version=0.0.4')
}

// The route table: one line per route. Handlers get the shared state, the reply and the parsed JSON body
// (POST) or path parameters (GET/DELETE); they throw HearthError for OpenAI-shaped error replies.
import { chatCompletions } from './chat-completions.js'
import { completions } from './completions.js'
import { embeddings } from './embeddings.js'
import type { Reply } from './http.js'
import { health, metrics } from './info.js'
import { getModel, listModels, restListModels, restLoad, restUnload } from './models-api.js'
import { createResponse, deleteResponse, getResponse } from './responses.js'
import type { ServerState } from './state.js'

export type Handler = (state: ServerState, reply: Reply, body: unknown, params: string[]) => void | Promise<void>

/** 'api': the API key when one is set; 'metrics': the metrics key, else the API key; 'none': open */
export type Auth = 'api' | 'metrics' | 'none'

export interface Route {
  method: 'get' | 'post' | 'del'
  path: string
  auth: Auth
  /** reads and parses a JSON body first */
  body: boolean
  /** submits generations: announced to the scheduler as soon as the request arrives */
  generates: boolean
  handler: Handler
}

const get = (path: string, handler: Handler, auth: Auth = 'api'): Route => ({ method: 'get', path, auth, body: false, generates: false, handler })
const post = (path: string, handler: Handler, generates = true): Route => ({ method: 'post', path, auth: 'api', body: true, generates, handler })
const del = (path: string, handler: Handler): Route => ({ method: 'del', path, auth: 'api', body: false, generates: false, handler })

export const routes: Route[] = [
  get('/health', health, 'none'),
  get('/metrics', metrics, 'metrics'),
  get('/v1/models', listModels),
  // ids such as publisher/repo have slashes: the segments are joined again
  get('/v1/models/:id', (s, r, _, p) => getModel(s, r, p.join('/'))),
  get('/v1/models/:publisher/:repo', (s, r, _, p) => getModel(s, r, p.join('/'))),
  get('/v1/models/:publisher/:repo/:file', (s, r, _, p) => getModel(s, r, p.join('/'))),
  get('/api/v1/models', restListModels),
  post('/api/v1/models/load', restLoad, false),
  post('/api/v1/models/unload', restUnload, false),
  post('/v1/chat/completions', chatCompletions),
  post('/v1/completions', completions),
  post('/v1/embeddings', embeddings, false),
  post('/v1/responses', createResponse),
  get('/v1/responses/:id', (s, r, _, [id]) => getResponse(s, r, id!)),
  del('/v1/responses/:id', (s, r, _, [id]) => deleteResponse(s, r, id!)),
]

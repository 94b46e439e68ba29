// Runs one library request for one HTTP reply: the request is started (admission errors are thrown before anything
// is written, with the endpoint's wire names for parameters), tied to the client (a client that goes away cancels
// it at once), and counted (metrics per token, the request log's token counts even for cut-short streams).
import type { ChatRequest } from '../lib/chat.js'
import { HearthError } from '../lib/errors.js'
import type { GenerationEvent, GenerationResult } from '../lib/generation.js'
import type { Model, TextRequest } from '../lib/model.js'
import type { Reply } from './http.js'
import type { ServerState } from './state.js'

/**
 * How an endpoint names the library's parameters on the wire where the names differ, as rewrites of the start of
 * the library's parameter path: `[['prompt', 'input'], ['format', 'text.format']]`. Only whole path segments match.
 */
export type ParamNames = [lib: string, wire: string][]

export function renameParam(err: unknown, names: ParamNames): unknown {
  if (!(err instanceof HearthError) || err.param === null) return err
  const param = err.param
  const hit = names.find(([lib]) => param === lib || param.startsWith(lib + '.') || param.startsWith(lib + '['))
  if (!hit) return err
  const wire = hit[1] + param.slice(hit[0].length)
  // the message names the parameter as the library does; say it as the client wrote it (identifiers only: a
  // plain word such as "prompt" stays, since the message may use it as a word)
  const identifier = (name: string) => /[._[]/.test(name)
  let message = err.message.split(param).join(wire)
  if (identifier(hit[0])) message = message.split(hit[0]).join(hit[1])
  const renamed = new HearthError(err.code, message, wire)
  renamed.stack = err.stack
  return renamed
}

export interface ServedGeneration {
  readonly choices: number
  readonly promptTokens: number
  /** Events inside the decode step (write, don't await); buffered until this is called. */
  listen(onEvent: (e: GenerationEvent) => void): void
  /** Every choice's result and the usage; rejects when generation fails (or the client left). */
  readonly result: Promise<GenerationResult>
}

export async function serveGeneration(
  state: ServerState,
  reply: Reply,
  model: Model,
  request: ChatRequest | TextRequest,
  names: ParamNames,
): Promise<ServedGeneration> {
  let generation
  try {
    generation = await model.run(request)
  } catch (err) {
    throw renameParam(err, names)
  } finally {
    reply.arrived()
  }
  const gen = generation
  reply.promptTokens = gen.promptTokens
  reply.onAbort(() => gen.cancel())
  const lastToken: number[] = Array(gen.choices).fill(0)
  const metrics = state.metrics
  const countToken = (choice: number) => {
    const now = performance.now()
    if (lastToken[choice] === 0) metrics.ttft.observe((now - reply.startedAt) / 1000)
    else metrics.tokenGap.observe((now - lastToken[choice]!) / 1000)
    lastToken[choice] = now
    metrics.generatedTokens++
    reply.completionTokens++
  }
  metrics.promptTokens += gen.promptTokens
  const result = gen.result.then((r) => {
    metrics.cachedTokens += r.usage.cachedTokens
    return r
  })
  result.catch(() => undefined)
  return {
    choices: gen.choices,
    promptTokens: gen.promptTokens,
    listen(onEvent) {
      gen.listen((e) => {
        if (e.kind === 'token') countToken(e.choice)
        onEvent(e)
      })
    },
    result,
  }
}

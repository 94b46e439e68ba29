// `hearth ls|ps|load|unload`: the model commands, talking to a running server over LM Studio's REST model API
// (server/models-api.ts), as LM Studio's `lms` does. Each prints a table, or with --json the API's answer.
import { parseArgs } from 'node:util'

export const MODELS_USAGE = `Usage: hearth ls [--json]                    models the server can load, with size, architecture, quantization
       hearth ps [--json]                    loaded models, with context, slots, queue and idle time
       hearth load MODEL [--ctx N] [--ttl S] [--json]
       hearth unload MODEL|--all [--json]

Options:
  --url URL       the server; default $HEARTH_URL, else http://127.0.0.1:$HEARTH_PORT (1234)
  --api-key KEY   its API key; default $HEARTH_API_KEY
  --json          print the API's JSON
`

interface RestModel {
  type: string
  key: string
  architecture: string | null
  quantization: { name: string; bits_per_weight: number | null } | null
  size_bytes: number
  params_string: string | null
  max_context_length: number | null
  state: string
  progress?: number
  error?: string
  loaded_instances: { id: string; config: { context_length?: number; parallel?: number } }[]
  how_loaded?: string
  ttl_seconds?: number | null
  idle_seconds?: number | null
  memory_bytes?: number
  slots?: number
  active?: number
  queued?: number
}

class CliError extends Error {}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`
}

function duration(s: number | null | undefined): string {
  if (s === null || s === undefined) return '-'
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n'
}

export async function modelsCommand(command: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        'api-key': { type: 'string' },
        json: { type: 'boolean' },
        ctx: { type: 'string' },
        ttl: { type: 'string' },
        all: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    process.stderr.write(`hearth ${command}: ${(err as Error).message}\n${MODELS_USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(MODELS_USAGE)
    return 0
  }
  const base = (values.url ?? env.HEARTH_URL ?? `http://127.0.0.1:${env.HEARTH_PORT || 1234}`).replace(/\/+$/, '')
  const key = values['api-key'] ?? env.HEARTH_API_KEY
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> => {
    const headers: Record<string, string> = { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }
    const r = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }).catch((err: unknown) => {
      throw new CliError(`cannot reach the server at ${base} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is \`hearth serve\` running?`)
    })
    if (!r.ok) {
      const text = await r.text()
      let message = text
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message
      } catch {
        // not an OpenAI-shaped error: show it as it is
      }
      throw new CliError(`${r.status}: ${message}`)
    }
    return r
  }
  const models = async () => ((await (await call('GET', '/api/v1/models')).json()) as { models: RestModel[] }).models
  const print = (json: unknown, text: () => string) => process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : text())
  const int = (name: string, raw: string | undefined, min: number) => {
    if (raw === undefined) return undefined
    const v = Number(raw)
    if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
    return v
  }

  try {
    switch (command) {
      case 'ls': {
        const list = await models()
        print({ models: list }, () =>
          table([
            ['MODEL', 'TYPE', 'SIZE', 'PARAMS', 'ARCH', 'QUANT', 'STATE'],
            ...list.map((m) => [
              m.key, m.type, size(m.size_bytes), m.params_string ?? '-', m.architecture ?? '-', m.quantization?.name ?? '-',
              m.state === 'loading' ? `loading ${Math.round((m.progress ?? 0) * 100)}%` : m.state === 'error' ? `error: ${m.error ?? ''}` : m.state,
            ]),
          ]),
        )
        return 0
      }
      case 'ps': {
        const loaded = (await models()).filter((m) => m.loaded_instances.length > 0)
        print({ models: loaded }, () =>
          loaded.length === 0
            ? 'no models loaded\n'
            : table([
                ['MODEL', 'TYPE', 'CONTEXT', 'SLOTS', 'ACTIVE', 'QUEUED', 'IDLE', 'TTL', 'MEMORY', 'LOADED BY'],
                ...loaded.map((m) => [
                  m.key, m.type, String(m.loaded_instances[0]!.config.context_length ?? '-'), String(m.slots ?? '-'), String(m.active ?? 0), String(m.queued ?? 0),
                  duration(m.idle_seconds), duration(m.ttl_seconds), m.memory_bytes !== undefined ? size(m.memory_bytes) : '-', m.how_loaded ?? '-',
                ]),
              ]),
        )
        return 0
      }
      case 'load': {
        const model = positionals[0]
        if (!model || positionals.length > 1) throw new CliError('load takes one model key (hearth ls lists them)')
        const ctx = int('ctx', values.ctx, 1)
        const ttl = int('ttl', values.ttl, 1)
        const tty = process.stdout.isTTY === true && !values.json
        const r = await call('POST', '/api/v1/models/load', { model, ...(ctx !== undefined ? { config: { context_length: ctx } } : {}), ...(ttl !== undefined ? { ttl } : {}), stream: true })
        let answer: Record<string, unknown> | null = null
        let buffered = ''
        const decoder = new TextDecoder()
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += decoder.decode(chunk, { stream: true })
          let end
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const frame = buffered.slice(0, end)
            buffered = buffered.slice(end + 2)
            const event = /^event: (.*)$/m.exec(frame)?.[1]
            const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? 'null') as Record<string, unknown>
            if (event === 'progress' && tty) {
              const p = Number(data.progress)
              process.stdout.write(`\rloading ${model} [${'#'.repeat(Math.round(p * 30)).padEnd(30)}] ${Math.round(p * 100)}%`)
            } else if (event === 'error') throw new CliError((data.error as { message: string }).message)
            else if (event === 'loaded') answer = data
          }
        }
        if (tty) process.stdout.write('\n')
        if (!answer) throw new CliError('the server ended the load without an answer')
        print(answer, () => `loaded ${String(answer!.model_instance_id)} in ${String(answer!.load_time_seconds)} s\n`)
        return 0
      }
      case 'unload': {
        if (values.all ? positionals.length > 0 : positionals.length !== 1) throw new CliError('unload takes one model key, or --all')
        const ids = values.all ? (await models()).filter((m) => m.loaded_instances.length > 0).map((m) => m.key) : [positionals[0]!]
        const done: { instance_id: string }[] = []
        for (const id of ids) done.push((await (await call('POST', '/api/v1/models/unload', { instance_id: id })).json()) as { instance_id: string })
        print({ unloaded: done }, () => (done.length === 0 ? 'no models loaded\n' : done.map((d) => `unloaded ${d.instance_id}\n`).join('')))
        return 0
      }
      default:
        process.stderr.write(MODELS_USAGE)
        return 2
    }
  } catch (err) {
    if (!(err instanceof CliError)) throw err
    process.stderr.write(`hearth ${command}: ${err.message}\n`)
    return 1
  }
}

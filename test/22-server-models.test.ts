// Several models through the real server: a models folder in LM Studio's publisher/repo layout holding a copy of
// the built-in model, a Q8_0 copy made with the addon's quantizer, a projector file and a broken file. JIT loading
// (one load for concurrent requests), aliases, auto-evict, explicit loads that are not evicted, idle TTL, unload
// waiting for a running stream, LM Studio's REST model API (with SSE load progress), --no-jit and '*' aliases.
// Events are awaited in the server's log, never with sleeps.
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import t from 'tap'
import { defaultModelPath } from '../lib/model.js'
import { promisify } from 'node:util'
import { native, packageRoot } from '../lib/native.js'
import { parseConfig } from '../server/cli.js'
import { post, sseEvents, startTestServer, tempDir, type TestServer } from './server-helpers.js'

const run = promisify(execFile)
const BUILTIN = 'austen-kjv-2.6m-f32'
const F32 = 'hearth/austen-f32'
const Q8 = 'hearth/austen-q8'
const BROKEN = 'broken/junk'

/** The models folder: publisher/repo/file.gguf, as LM Studio lays it out. */
async function modelsFolder(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'hearth', 'austen-f32'), { recursive: true })
  mkdirSync(join(dir, 'hearth', 'austen-q8'), { recursive: true })
  mkdirSync(join(dir, 'broken', 'junk'), { recursive: true })
  copyFileSync(defaultModelPath, join(dir, 'hearth', 'austen-f32', 'austen-kjv-2.6m-f32.gguf'))
  // a projector beside its model is not a model of its own
  copyFileSync(defaultModelPath, join(dir, 'hearth', 'austen-f32', 'mmproj-austen-f32.gguf'))
  await native.quantize(defaultModelPath, join(dir, 'hearth', 'austen-q8', 'austen-kjv-2.6m-q8_0.gguf'), 'q8_0', 1)
  writeFileSync(join(dir, 'broken', 'junk', 'junk.gguf'), Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 0xff)]))
  return dir
}

/** Resolves once the server's log has `re` matched `count` times (counting what it already printed). */
function logged(s: TestServer, re: RegExp, count = 1): Promise<void> {
  const g = new RegExp(re.source, 'g')
  const seen = () => (s.output().match(g) ?? []).length >= count
  if (seen()) return Promise.resolve()
  return new Promise((resolve) => {
    const check = () => {
      if (!seen()) return
      s.proc.stdout!.off('data', check)
      resolve()
    }
    s.proc.stdout!.on('data', check)
  })
}

const count = (s: TestServer, re: RegExp) => (s.output().match(new RegExp(re.source, 'g')) ?? []).length

type ListEntry = { id: string; state: string; type: string; architecture: string; quantization: string; max_context_length: number; loaded_context_length: number | null; capabilities: string[]; error?: string }

async function list(s: TestServer): Promise<Map<string, ListEntry>> {
  const r = await fetch(`${s.baseURL}/models`)
  const body = (await r.json()) as { data: ListEntry[] }
  return new Map(body.data.map((m) => [m.id, m]))
}

const chat = (s: TestServer, model: string, extra: Record<string, unknown> = {}) =>
  s.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0, ...extra })

t.test('serve flags for models', async (t) => {
  const c = parseConfig(['--models-dir', '/a', '--models-dir', '/b', '--no-jit', '--ttl', '90', '--max-models', '3', '--max-memory', '8G', '--alias', 'gpt-4o-mini=x/y', '--alias', '*=z'], {})
  t.match(c, { modelsDirs: ['/a', '/b'], jit: false, ttlMs: 90_000, maxModels: 3, autoEvict: true, maxMemoryBytes: 8 * 2 ** 30, aliases: [['gpt-4o-mini', 'x/y'], ['*', 'z']] })
  t.match(parseConfig([], {}), { modelsDirs: null, jit: true, ttlMs: 3_600_000, maxModels: 1, maxMemoryBytes: null, aliases: [] })
  t.equal(parseConfig(['--ttl', '0'], {}).ttlMs, null, '--ttl 0: never')
  t.equal(parseConfig(['--max-memory', '512M', '--no-auto-evict'], {}).maxMemoryBytes, 512 * 2 ** 20)
  t.equal(parseConfig(['--no-auto-evict'], {}).autoEvict, false)
  t.same(parseConfig([], { HEARTH_MODELS_DIR: ['/c', '/d'].join(delimiter), HEARTH_ALIAS: 'a=b' }).modelsDirs, ['/c', '/d'])
  t.throws(() => parseConfig(['--alias', 'nothing'], {}), /--alias must be NAME=ID/)
  t.throws(() => parseConfig(['--max-memory', 'lots'], {}), /--max-memory must be a size/)
  t.throws(() => parseConfig(['--max-models', '0'], {}), /--max-models must be an integer >= 1/)
})

t.test('a models folder served with JIT, aliases, auto-evict, TTL and the REST model API', async (t) => {
  const dir = await modelsFolder(t)
  const s = await startTestServer(t, ['--models-dir', dir, '--alias', `gpt-4o-mini=${Q8}`, '--max-models', '1'])

  await t.test('/v1/models lists every available model with hearth\'s fields', async (t) => {
    const m = await list(s)
    t.same([...m.keys()].sort(), [BUILTIN, BROKEN, F32, Q8].sort(), 'the projector is not listed')
    t.match(m.get(BUILTIN), { state: 'loaded', type: 'llm', architecture: 'llama', quantization: 'F32', max_context_length: 256, loaded_context_length: 256 })
    t.match(m.get(F32), { state: 'not-loaded', type: 'llm', quantization: 'F32', loaded_context_length: null })
    t.match(m.get(Q8), { state: 'not-loaded', quantization: 'Q8_0' })
    t.equal(m.get(BROKEN)!.state, 'error')
    t.type(m.get(BROKEN)!.error, 'string')
    t.match(await s.client.models.retrieve(Q8), { id: Q8, owned_by: 'hearth', state: 'not-loaded' }, 'ids with a slash are retrieved too')
    t.equal((await s.client.models.retrieve('austen-kjv-2.6m-q8_0.gguf')).id, Q8, 'by its file name')
  })

  await t.test('two concurrent first requests cause one load; the response names the model', async (t) => {
    const [a, b] = await Promise.all([chat(s, Q8), chat(s, Q8)])
    t.equal(a.model, Q8)
    t.equal(b.model, Q8)
    t.equal(count(s, /loading hearth\/austen-q8 /), 1, 'one load')
    t.equal((await list(s)).get(Q8)!.state, 'loaded')
  })

  await t.test('an alias answers with the model it names', async (t) => {
    const r = await chat(s, 'gpt-4o-mini')
    t.equal(r.model, Q8)
    t.equal(count(s, /loading hearth\/austen-q8 /), 1, 'no second load')
  })

  await t.test('an unknown name is a 404 listing the available ids', async (t) => {
    const r = await post(`${s.baseURL}/chat/completions`, { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'x' }] })
    t.equal(r.status, 404)
    t.equal(r.json.error.code, 'model_not_found')
    for (const id of [BUILTIN, F32, Q8]) t.match(r.json.error.message, id)
  })

  await t.test('auto-evict keeps one JIT model; the start model stays', async (t) => {
    const r = await chat(s, F32)
    t.equal(r.model, F32)
    await logged(s, /unloaded hearth\/austen-q8 \(auto-evict\)/)
    const m = await list(s)
    t.equal(m.get(Q8)!.state, 'not-loaded')
    t.equal(m.get(F32)!.state, 'loaded')
    t.equal(m.get(BUILTIN)!.state, 'loaded')
  })

  await t.test('a broken file is a clear error while the others keep serving', async (t) => {
    const r = await post(`${s.baseURL}/chat/completions`, { model: BROKEN, messages: [{ role: 'user', content: 'x' }] })
    t.equal(r.status, 500)
    t.equal(r.json.error.code, 'model_load_failed')
    t.match(r.json.error.message, BROKEN)
    t.equal((await chat(s, BUILTIN)).model, BUILTIN)
    t.equal((await chat(s, F32)).model, F32, 'the JIT model was not evicted for a load that failed')
  })

  await t.test('/api/v1/models/load and unload: shapes; an explicit load is not evicted', async (t) => {
    const bad = await post(`${s.url}/api/v1/models/load`, { model: Q8, config: { context_length: 128, rope_scale: 2 } })
    t.equal(bad.status, 400)
    t.equal(bad.json.error.code, 'unknown_parameter')
    t.equal(bad.json.error.param, 'config.rope_scale')
    const r = await post(`${s.url}/api/v1/models/load`, { model: Q8, config: { context_length: 128 } })
    t.equal(r.status, 200, r.text)
    t.match(r.json, { model_instance_id: Q8, config: { context_length: 128, eval_batch_size: Number }, load_time_seconds: Number })
    const again = await post(`${s.url}/api/v1/models/load`, { model: Q8 })
    t.equal(again.json.model_instance_id, Q8, 'one instance per model')
    // F32 is JIT-loaded; unload it, then load it again by a request: Q8 (explicit) stays
    const u = await post(`${s.url}/api/v1/models/unload`, { instance_id: F32 })
    t.same(u.json, { instance_id: F32 })
    t.equal((await chat(s, F32)).model, F32)
    const rest = (await (await fetch(`${s.url}/api/v1/models`)).json()) as { models: { key: string; type: string; publisher: string; format: string; quantization: { name: string; bits_per_weight: number } | null; loaded_instances: { id: string; config: { context_length: number } }[]; capabilities: { vision: boolean; trained_for_tool_use: boolean } }[] }
    const q8 = rest.models.find((m) => m.key === Q8)!
    t.match(q8, { type: 'llm', publisher: 'hearth', format: 'gguf', quantization: { name: 'Q8_0' }, loaded_instances: [{ id: Q8, config: { context_length: 128 } }] })
    t.ok(q8.quantization!.bits_per_weight > 8 && q8.quantization!.bits_per_weight < 9, 'Q8_0 is 8.5 bits per weight')
    t.equal(rest.models.find((m) => m.key === F32)!.loaded_instances.length, 1)
    t.equal(rest.models.find((m) => m.key === F32)!.capabilities.vision, true, 'its projector pairs with it')
    const missing = await post(`${s.url}/api/v1/models/unload`, { instance_id: BROKEN })
    t.equal(missing.status, 404)
    t.equal(missing.json.error.code, 'model_not_loaded')
  })

  await t.test('unload while a stream runs waits for the stream', async (t) => {
    const order: string[] = []
    const stream = await s.client.chat.completions.create({ model: Q8, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 64, temperature: 0, stream: true })
    let unload: Promise<unknown> | null = null
    for await (const c of stream) {
      if (!unload) unload = post(`${s.url}/api/v1/models/unload`, { instance_id: Q8 }).then((r) => order.push(`unload ${r.status}`))
      // the last token's chunk leaves the server before the model is idle, long before it is freed
      if (c.choices[0]?.finish_reason) order.push(`finish ${c.choices[0].finish_reason}`)
    }
    await unload
    t.match(order, [/^finish (length|stop)$/, 'unload 200'], 'the stream ran to its end, then the model unloaded')
    t.equal((await list(s)).get(Q8)!.state, 'not-loaded')
  })

  await t.test('a request ttl unloads the idle model; the next request loads it again', async (t) => {
    const loads = count(s, /loading hearth\/austen-q8 /)
    t.equal((await chat(s, Q8, { ttl: 1 } as Record<string, unknown>)).model, Q8)
    await logged(s, /unloaded hearth\/austen-q8 \(idle TTL\)/)
    t.equal((await list(s)).get(Q8)!.state, 'not-loaded')
    t.equal((await chat(s, Q8)).model, Q8)
    t.equal(count(s, /loading hearth\/austen-q8 /), loads + 2)
  })

  await t.test('load with SSE progress', async (t) => {
    await post(`${s.url}/api/v1/models/unload`, { instance_id: F32 })
    const r = await fetch(`${s.url}/api/v1/models/load`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: F32, stream: true }) })
    t.match(r.headers.get('content-type'), /text\/event-stream/)
    const events = sseEvents(await r.text())
    const progress = events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data) as { progress: number })
    t.ok(progress.length > 0, 'progress events')
    t.ok(progress.every((p, i) => i === 0 || p.progress > progress[i - 1]!.progress), 'rising')
    const last = events.at(-1)!
    t.equal(last.event, 'loaded')
    t.match(JSON.parse(last.data), { model_instance_id: F32, load_time_seconds: Number })
  })

  await t.test('the CLI: hearth ls, ps, load, unload --json against the server', async (t) => {
    const hearth = async (...args: string[]) => {
      const r = await run(process.execPath, [join(packageRoot, 'bin', 'hearth.js'), ...args, '--url', s.url, '--json']).catch((err: { code: number; stdout: string; stderr: string }) => err)
      return { code: 'code' in r ? r.code : 0, out: r.stdout, err: r.stderr }
    }
    const ls = await hearth('ls')
    t.equal(ls.code, 0, ls.err)
    const keys = (JSON.parse(ls.out) as { models: { key: string }[] }).models.map((m) => m.key)
    t.same(keys.sort(), [BUILTIN, BROKEN, F32, Q8].sort())
    const unloadAll = await hearth('unload', '--all')
    t.equal(unloadAll.code, 0, unloadAll.err)
    t.ok((JSON.parse(unloadAll.out) as { unloaded: { instance_id: string }[] }).unloaded.some((u) => u.instance_id === BUILTIN))
    const none = JSON.parse((await hearth('ps')).out) as { models: unknown[] }
    t.same(none.models, [], 'nothing loaded')
    const load = await hearth('load', Q8, '--ctx', '64', '--ttl', '600')
    t.equal(load.code, 0, load.err)
    t.match(JSON.parse(load.out), { model_instance_id: Q8, config: { context_length: 64 } })
    const ps = JSON.parse((await hearth('ps')).out) as { models: { key: string; ttl_seconds: number; slots: number; queued: number; idle_seconds: number; how_loaded: string }[] }
    t.equal(ps.models.length, 1)
    t.match(ps.models[0], { key: Q8, ttl_seconds: 600, slots: Number, queued: 0, idle_seconds: Number, how_loaded: 'explicit' })
    const u = await hearth('unload', Q8)
    t.same(JSON.parse(u.out), { unloaded: [{ instance_id: Q8 }] })
    const bad = await hearth('unload', 'no-such-model')
    t.equal(bad.code, 1)
    t.match(bad.err, /404: The model `no-such-model` does not exist/)
  })
})

t.test('--no-jit serves loaded models only; a * alias takes every unknown name', async (t) => {
  const dir = await modelsFolder(t)
  const s = await startTestServer(t, ['--models-dir', dir, '--no-jit', '--alias', `*=${BUILTIN}`])
  const m = await list(s)
  t.same([...m.keys()], [BUILTIN], 'only the loaded model is listed')
  const r = await post(`${s.baseURL}/chat/completions`, { model: Q8, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
  t.equal(r.status, 404)
  t.equal(r.json.error.code, 'model_not_loaded')
  t.match(r.json.error.message, /JIT loading is off/)
  const any = await chat(s, 'gpt-3.5-turbo')
  t.equal(any.model, BUILTIN)
  const loaded = await post(`${s.url}/api/v1/models/load`, { model: Q8 })
  t.equal(loaded.status, 200)
  t.equal((await chat(s, Q8)).model, Q8, 'served once loaded explicitly')
})

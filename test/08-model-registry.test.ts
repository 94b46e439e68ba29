// The models folder scan (ids for each layout, split models once, projectors paired and not listed) and the
// model registry's policy with fake models (no llama.cpp): one load shared by concurrent requests, the same
// error for every waiter, leases keep a model loaded, TTL, auto-evict, explicit loads kept, the memory budget.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { HearthError } from '../lib/errors.js'
import { MemoryBudget } from '../lib/memory-budget.js'
import { ModelRegistry, type Loader, type RegistryEvent, type RegistryModel } from '../lib/model-registry.js'
import { pairProjector, scanModels } from '../lib/model-scan.js'
import { ThreadShare } from '../lib/thread-share.js'
import { defaultModelPath } from '../lib/model.js'
import { tempDir } from './server-helpers.js'

function put(dir: string, rel: string): string {
  const path = join(dir, rel)
  mkdirSync(join(path, '..'), { recursive: true })
  copyFileSync(defaultModelPath, path)
  return path
}

t.test('scan: ids by layout, split models once, projectors', async (t) => {
  const dir = tempDir(t)
  put(dir, 'flat.gguf')
  put(dir, 'pub/repo/model-Q4_K_M.gguf')
  put(dir, 'pub/repo/mmproj-model-f16.gguf')
  put(dir, 'pub/two/a.gguf')
  put(dir, 'pub/two/b.gguf')
  put(dir, 'models--org--hub/snapshots/abc123/hub-q8_0.gguf')
  put(dir, 'split/big/big-00001-of-00002.gguf')
  put(dir, 'split/big/big-00002-of-00002.gguf')
  put(dir, 'split/gap/gap-00001-of-00003.gguf')
  put(dir, '.hidden/x.gguf')
  writeFileSync(join(dir, 'notes.txt'), 'not a model')
  const scan = await scanModels([dir])
  const byId = new Map(scan.models.map((m) => [m.id, m]))
  t.same([...byId.keys()].sort(), ['flat', 'org/hub', 'pub/repo', 'pub/two/a', 'pub/two/b', 'split/big', 'split/gap'].sort())
  t.equal(byId.get('pub/repo')!.projector, join(dir, 'pub/repo/mmproj-model-f16.gguf'), 'the projector pairs with its model')
  t.equal(byId.get('flat')!.projector, null)
  t.same(scan.projectors, [join(dir, 'pub/repo/mmproj-model-f16.gguf')])
  t.equal(byId.get('split/big')!.files.length, 2, 'a split model is one model')
  t.equal(byId.get('split/big')!.path, join(dir, 'split/big/big-00001-of-00002.gguf'), 'loaded from its first part')
  t.match(byId.get('split/gap')!.error, /part 2, 3 is missing/)
  t.match(byId.get('flat')!.info, { type: 'llm', architecture: 'llama', quantization: 'F32', maxContextLength: 256 })
  t.equal(pairProjector('/m/x/model-q4.gguf', ['/m/x/mmproj-other.gguf', '/m/x/mmproj-model-f16.gguf', '/m/y/mmproj-model.gguf']), '/m/x/mmproj-model-f16.gguf', 'the closest name in the same folder')
})

class FakeModel implements RegistryModel {
  disposed = false
  #busy = 0
  #idle: (() => void)[] = []
  constructor(readonly id: string, readonly bytes: number, readonly kind: 'llm' | 'embeddings' = 'llm') {}
  memoryUse() {
    return { host: this.bytes }
  }
  busy() {
    return this.#busy > 0
  }
  idle() {
    return this.#busy === 0 ? Promise.resolve() : new Promise<void>((r) => this.#idle.push(r))
  }
  /** a request running in the model until the returned function is called */
  work(): () => void {
    this.#busy++
    return () => {
      if (--this.#busy === 0) for (const r of this.#idle.splice(0)) r()
    }
  }
  async dispose() {
    this.disposed = true
  }
}

function setup(t: Parameters<typeof tempDir>[0], options: { maxModels?: number; budget?: number; ttlMs?: number | null; jit?: boolean } = {}) {
  const dir = tempDir(t)
  for (const name of ['a', 'b', 'c', 'e']) put(dir, `${name}.gguf`)
  const loads: string[] = []
  const gates = new Map<string, { release: () => void; fail: (e: Error) => void }>()
  let gated = false
  const loader: Loader<FakeModel> = (scanned, { id }) => {
    loads.push(id)
    // e stands for an embedding model
    if (!gated) return Promise.resolve(new FakeModel(id, 100, id === 'e' ? 'embeddings' : 'llm'))
    return new Promise((resolve, reject) => gates.set(id, { release: () => resolve(new FakeModel(id, 100)), fail: reject }))
  }
  const events: RegistryEvent[] = []
  const registry = new ModelRegistry<FakeModel>({
    dirs: [dir],
    budget: new MemoryBudget(options.budget ?? 10_000),
    loader,
    estimate: () => 100,
    maxModels: options.maxModels ?? 1,
    ttlMs: options.ttlMs === undefined ? null : options.ttlMs,
    jit: options.jit ?? true,
    aliases: new Map([['gpt-4o-mini', 'b']]),
  })
  registry.subscribe((e) => events.push(e))
  t.teardown(() => registry.close())
  // the first such event, whether it has happened yet or not
  const next = (kind: RegistryEvent['kind'], id: string) =>
    new Promise<RegistryEvent>((resolve) => {
      const past = events.find((e) => e.kind === kind && e.id === id)
      if (past) return resolve(past)
      const stop = registry.subscribe((e) => {
        if (e.kind === kind && e.id === id) {
          stop()
          resolve(e)
        }
      })
    })
  return { registry, loads, events, gates, gate: () => (gated = true), next }
}

t.test('registry: one load for concurrent requests; a failed load answers every waiter the same', async (t) => {
  const { registry, loads, gates, gate } = setup(t)
  gate()
  const waiting = [registry.acquire('a'), registry.acquire('a'), registry.acquire('a.gguf')]
  await new Promise<void>((r) => setImmediate(r))
  while (!gates.has('a')) await new Promise<void>((r) => setImmediate(r))
  t.equal(registry.view('a')!.state, 'loading')
  gates.get('a')!.release()
  const leases = await Promise.all(waiting)
  t.same(loads, ['a'], 'one load')
  t.ok(leases.every((l) => l.model === leases[0]!.model))
  for (const l of leases) l.release()

  const failing = [registry.acquire('b'), registry.acquire('gpt-4o-mini')]
  while (!gates.has('b')) await new Promise<void>((r) => setImmediate(r))
  gates.get('b')!.fail(new HearthError('model_load_failed', 'bad tensor'))
  const errors = await Promise.all(failing.map((p) => p.then(() => null, (e: HearthError) => e)))
  t.equal(errors[0], errors[1], 'the same error')
  t.match(errors[0], { code: 'model_load_failed', message: /cannot load `b`.*bad tensor/ })
  t.equal(registry.view('b')!.state, 'error')
  t.match(await registry.acquire('nope').catch((e: HearthError) => e), { code: 'model_not_found', message: /Available models: .*a.*b.*c/ })
})

t.test('registry: auto-evict, explicit loads kept, leases and running work hold an unload', async (t) => {
  const { registry, next } = setup(t, { maxModels: 1 })
  const a = await registry.acquire('a')
  a.release()
  const b = await registry.acquire('b')
  await next('unloaded', 'a')
  t.equal(registry.view('a')!.state, 'not-loaded', 'a evicted for b')
  // b has a request running: evicting it for c waits for that request, and c loads once b is gone
  const work = b.model.work()
  b.release()
  const pc = registry.acquire('c')
  await next('unloading', 'b')
  t.equal(registry.view('b')!.state, 'unloading')
  t.notOk(b.model.disposed, 'not freed while its request runs')
  work()
  const c = await pc
  t.ok(b.model.disposed)
  t.equal(registry.view('b')!.state, 'not-loaded')
  c.release()

  await registry.load('a')
  const lb = await registry.acquire('b')
  lb.release()
  t.equal(registry.view('a')!.state, 'loaded', 'an explicit load is not evicted')
  t.equal(registry.view('a')!.how, 'explicit')
})

t.test('registry: an embedding model refuses to generate', async (t) => {
  const { registry } = setup(t, { maxModels: 3 })
  t.match(await registry.acquire('e', { purpose: 'generate' }).catch((e: HearthError) => e), { code: 'wrong_model_type', status: 400, message: /`e` is an embedding model/ })
  const l = await registry.acquire('e', { purpose: 'embed' })
  t.equal(l.model.kind, 'embeddings')
  l.release()
})

t.test('registry: idle TTL unloads; the next request loads again', async (t) => {
  const { registry, loads, next } = setup(t, { ttlMs: null })
  const gone = next('unloaded', 'a')
  const l = await registry.acquire('a', { purpose: 'generate', ttlMs: 5 })
  t.equal(registry.view('a')!.ttlMs, 5)
  // the registry's TTL timers do not keep a process alive: this test waits on one, so it keeps itself alive
  const alive = setInterval(() => undefined, 1000)
  l.release()
  t.match(await gone, { reason: 'ttl' })
  clearInterval(alive)
  ;(await registry.acquire('a')).release()
  t.same(loads, ['a', 'a'])
})

t.test('registry: JIT off; memory budget', async (t) => {
  const off = setup(t, { jit: false })
  t.match(await off.registry.acquire('a').catch((e: HearthError) => e), { code: 'model_not_loaded' })
  await off.registry.load('a')
  ;(await off.registry.acquire('a')).release()

  const small = setup(t, { budget: 250, maxModels: 3 })
  ;(await small.registry.acquire('a')).release()
  ;(await small.registry.acquire('b')).release()
  ;(await small.registry.acquire('c')).release()
  t.match(small.events.find((e) => e.kind === 'unloaded'), { id: 'a', reason: 'memory' }, 'the least recently used idle model made room')
  await small.registry.load('b')
  await small.registry.load('c')
  t.match(await small.registry.acquire('a').catch((e: HearthError) => e), { code: 'insufficient_memory' }, 'explicit loads are not evicted for memory')
})

t.test('thread share: all threads to the only busy model, equal shares among busy ones', async (t) => {
  const share = new ThreadShare(4)
  const a = { on: false, busy() { return this.on } }
  const b = { on: false, busy() { return this.on } }
  const c = { on: false, busy() { return this.on } }
  for (const u of [a, b, c]) share.add(u)
  t.equal(share.threadsFor(a), 4, 'alone: all of them')
  a.on = true
  t.equal(share.threadsFor(a), 4, 'the only busy one')
  b.on = true
  t.equal(share.threadsFor(a), 2)
  t.equal(share.threadsFor(b), 2)
  c.on = true
  t.same([share.threadsFor(a), share.threadsFor(b), share.threadsFor(c)], [2, 1, 1], 'the shares add up to the total')
  share.remove(b)
  t.equal(share.threadsFor(a), 2)
  t.equal(new ThreadShare(1).threadsFor(a), 1)
})

// The models a server can serve and the ones it has loaded: the folders' models (lib/model-scan.ts) plus the files
// named directly (the built-in model, --model), JIT loading with one load shared by every request that waits for
// it, idle TTL, auto-evict (at most `maxModels` JIT-loaded models, and never beyond the memory budget), and
// explicit loads and unloads. Policy only: loading is the loader's (Model.load / EmbeddingModel.load), memory is
// what the loaded model reports (llama.cpp's own numbers; an estimate from the header decides before it loads).
//
// Invariants:
// - one entry per model id; one load at a time per entry, shared by everyone waiting (`loading`);
// - a model is never unloaded while it has leases (requests between resolving it and handing their work to it)
//   or requests running or queued in it (`busy()`); an unload waits for both, and requests that arrive during an
//   unload wait for it to finish and then load the model again (JIT) or get model_not_loaded;
// - only JIT-loaded models are evicted (for the count or for memory) or get the default TTL; a model loaded at
//   start or explicitly stays until it is unloaded or its own TTL (given at load) expires.
import { basename, resolve } from 'node:path'
import { EmbeddingModel } from './embedding-model.js'
import { HearthError, toHearthError } from './errors.js'
import type { BudgetHolder, MemoryBudget } from './memory-budget.js'
import { estimateLoadBytes } from './model-info.js'
import { describeFile, HeaderCache, scanModels, type ScannedModel } from './model-scan.js'
import { Model, planContext, type ModelOptions } from './model.js'

export type ServedModel = Model | EmbeddingModel

/** What the registry needs of a loaded model (ServedModel; a fake in the tests without a model). */
export interface RegistryModel {
  readonly id: string
  readonly kind: 'llm' | 'embeddings'
  /** bytes as llama.cpp reports them; `host` (RAM) is what the budget counts */
  memoryUse(): { readonly host: number }
  /** requests running or queued */
  busy(): boolean
  /** resolves when not busy (it may be busy again by then) */
  idle(): Promise<void>
  /** waits for running requests, then frees everything */
  dispose(): Promise<void>
  /** its host-RAM prompt cache, asked to give memory back before any model is evicted */
  readonly promptCache?: BudgetHolder | null
}

/** A load's settings, LM Studio's names in camelCase. Absent fields take the server's defaults. */
export interface LoadConfig {
  /** tokens per sequence (an embedding model: per input) */
  contextLength?: number
  /** tokens per decode step */
  evalBatchSize?: number
  flashAttention?: boolean
  /** sequences decoded together */
  parallel?: number
}

export type ModelState = 'not-loaded' | 'loading' | 'loaded' | 'unloading' | 'error'
/** start: --model; explicit: a load request (REST, CLI, library); jit: a request that named it */
export type LoadedHow = 'start' | 'explicit' | 'jit'
export type UnloadReason = 'request' | 'ttl' | 'evict' | 'memory' | 'close'

export type RegistryEvent =
  | { kind: 'loading'; id: string; how: LoadedHow }
  | { kind: 'progress'; id: string; progress: number }
  | { kind: 'loaded'; id: string; how: LoadedHow; ms: number; bytes: number }
  | { kind: 'load-failed'; id: string; error: HearthError }
  | { kind: 'unloading'; id: string; reason: UnloadReason }
  | { kind: 'unloaded'; id: string; reason: UnloadReason }

export interface LoaderOptions {
  id: string
  config: LoadConfig
  onProgress: (progress: number) => void
}

export type Loader<M extends RegistryModel> = (model: ScannedModel, options: LoaderOptions) => Promise<M>

export interface RegistryOptions<M extends RegistryModel> {
  /** models folders, scanned in order */
  dirs: readonly string[]
  /** files served besides the folders' models (the built-in model, --model); `id` default: file name less .gguf */
  files?: readonly { path: string; id?: string }[]
  /** the path (one of `files`) loaded by start() and used when a request names no model; null: none */
  startModel?: string | null
  /** load a model a request names when it is not loaded; default true */
  jit?: boolean
  /** idle time after which a JIT-loaded model is unloaded (a request's ttl overrides it); null: never. Default 1 h */
  ttlMs?: number | null
  /** keep at most `maxModels` JIT-loaded models, evicting the least recently used idle one; default true */
  autoEvict?: boolean
  /** default 1 */
  maxModels?: number
  budget: MemoryBudget
  /** other holders of the budget asked to give memory back before idle models are evicted (prompt caches) */
  reclaimFirst?: BudgetHolder[]
  /** client-side names to model ids or names; '*' takes every name that matches no model */
  aliases?: ReadonlyMap<string, string>
  loader: Loader<M>
  /** bytes a load is expected to take before it reports them; default: from the header (lib/model-info.ts) */
  estimate?: (model: ScannedModel, config: LoadConfig) => number
}

export interface Lease<M> {
  readonly model: M
  /** Idempotent. Call once the request's work is in the model's queues (or will never be). */
  release(): void
}

/** A model's entry as the lists show it. */
export interface ModelView<M> {
  readonly id: string
  readonly scanned: ScannedModel
  readonly state: ModelState
  /** 0..1 while loading */
  readonly progress: number
  readonly error: HearthError | null
  readonly how: LoadedHow | null
  readonly ttlMs: number | null
  /** ms since it last had work (0 while it has); null when not loaded */
  readonly idleMs: number | null
  readonly model: M | null
  readonly loadTimeMs: number
  /** bytes held in the memory budget (the estimate while loading) */
  readonly memoryBytes: number
  readonly config: LoadConfig
}

/** A setTimeout can wait at most this long. */
export const MAX_TTL_MS = 2 ** 31 - 1

class Entry<M extends RegistryModel> implements BudgetHolder {
  readonly id: string
  scanned: ScannedModel
  /** the file is named directly (built-in, --model): kept even when no folder lists it */
  readonly pinnedFile: boolean
  state: ModelState = 'not-loaded'
  progress = 0
  error: HearthError | null = null
  /** the file version the error is about: a changed file is tried again */
  errorStamp = ''
  model: M | null = null
  loading: Promise<M> | null = null
  unloading: Promise<void> | null = null
  how: LoadedHow | null = null
  ttlMs: number | null = null
  config: LoadConfig = {}
  leases = 0
  /** requests waiting for its load or unload: it is not evicted for another model meanwhile */
  waiting = 0
  lastUsed = 0
  idleSince = 0
  timer: NodeJS.Timeout | null = null
  watchingIdle = false
  loadTimeMs = 0
  leaseWaiters: (() => void)[] = []
  giveBack?: (bytes: number) => number

  constructor(scanned: ScannedModel, pinnedFile: boolean) {
    this.id = scanned.id
    this.scanned = scanned
    this.pinnedFile = pinnedFile
  }

  get name(): string {
    return `model ${this.id}`
  }
}

export class ModelRegistry<M extends RegistryModel = ServedModel> {
  readonly budget: MemoryBudget
  readonly reclaimFirst: BudgetHolder[]
  readonly jit: boolean
  readonly autoEvict: boolean
  readonly maxModels: number
  readonly defaultTtlMs: number | null
  readonly #options: RegistryOptions<M>
  readonly #headers = new HeaderCache()
  readonly #entries = new Map<string, Entry<M>>()
  /** every other name a model answers to (file name, stem, paths); null where two models share it */
  #names = new Map<string, Entry<M> | null>()
  #scan: Promise<void> | null = null
  #startEntry: Entry<M> | null = null
  #closed = false
  readonly #listeners = new Set<(e: RegistryEvent) => void>()
  /** the last scan's warnings (duplicate ids, unreadable folders) */
  warnings: string[] = []

  constructor(options: RegistryOptions<M>) {
    this.#options = options
    this.budget = options.budget
    this.reclaimFirst = options.reclaimFirst ?? []
    this.jit = options.jit ?? true
    this.autoEvict = options.autoEvict ?? true
    this.maxModels = options.maxModels ?? 1
    this.defaultTtlMs = options.ttlMs === undefined ? 60 * 60 * 1000 : options.ttlMs
    if (!Number.isInteger(this.maxModels) || this.maxModels < 1) throw new RangeError('maxModels must be a positive integer')
  }

  /** Listens to loads, unloads and load progress; returns the function that stops listening. */
  subscribe(fn: (e: RegistryEvent) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  #emit(e: RegistryEvent): void {
    for (const fn of this.#listeners) fn(e)
  }

  /** Scans the folders and loads the start model (rejects with its load error). */
  async start(): Promise<M | null> {
    await this.refresh()
    const start = this.#options.startModel
    if (!start) return null
    const entry = this.#entryForPath(start)
    if (!entry) throw new HearthError('model_not_found', `the start model ${start} is not among the served files`)
    this.#startEntry = entry
    return this.#loadEntry(entry, 'start', {}, null)
  }

  /** The start model's id once the folders are scanned (null before, and when there is none). */
  get startId(): string | null {
    return this.#startEntry?.id ?? null
  }

  /** One model's view (by id), or null. */
  view(id: string): ModelView<M> | null {
    return this.snapshot().find((v) => v.id === id) ?? null
  }

  #entryForPath(path: string): Entry<M> | null {
    const abs = resolve(path)
    for (const e of this.#entries.values()) if (resolve(e.scanned.path) === abs) return e
    return null
  }

  /** Scans the folders again (one scan at a time; callers during a scan share it). */
  refresh(): Promise<void> {
    this.#scan ??= this.#rescan().finally(() => (this.#scan = null))
    return this.#scan
  }

  async #rescan(): Promise<void> {
    const files: ScannedModel[] = []
    for (const f of this.#options.files ?? []) files.push(await describeFile(f.path, f.id ?? basename(f.path).replace(/\.gguf$/i, ''), this.#headers))
    const scan = await scanModels(this.#options.dirs, this.#headers)
    this.warnings = scan.warnings
    const seen = new Set<string>()
    const next = new Map<string, Entry<M>>()
    const add = (m: ScannedModel, pinned: boolean) => {
      if (seen.has(m.id.toLowerCase())) return
      // a file named directly that a folder also holds is one model, under the id it was named with
      if (!pinned && files.some((f) => resolve(f.path) === resolve(m.path))) return
      seen.add(m.id.toLowerCase())
      const old = this.#entries.get(m.id)
      const entry = old && resolve(old.scanned.path) === resolve(m.path) ? old : new Entry<M>(m, pinned)
      entry.scanned = m
      next.set(m.id, entry)
    }
    for (const m of files) add(m, true)
    for (const m of scan.models) add(m, false)
    // a loaded model whose file went away stays until it is unloaded
    for (const [id, e] of this.#entries) if (!next.has(id) && (e.model || e.loading || e.unloading)) next.set(id, e)
    this.#entries.clear()
    for (const [id, e] of next) this.#entries.set(id, e)
    const names = new Map<string, Entry<M> | null>()
    for (const e of this.#entries.values()) {
      const p = e.scanned.path
      const stem = basename(p).replace(/\.gguf$/i, '').replace(/-\d{5}-of-\d{5}$/, '')
      for (const n of new Set([basename(p), stem, e.scanned.relPath, p, resolve(p)])) {
        if (this.#entries.has(n)) continue
        names.set(n, names.has(n) && names.get(n) !== e ? null : e)
      }
    }
    this.#names = names
  }

  /** Exact names only (ids are case-sensitive, as OpenAI's are; the scan keeps ids unique ignoring case). */
  #lookup(name: string): Entry<M> | null {
    return this.#entries.get(name) ?? this.#names.get(name) ?? null
  }

  /** The entry a request's model name means, after aliases; null when none. */
  #match(name: string): Entry<M> | null {
    const aliases = this.#options.aliases
    const alias = aliases?.get(name)
    if (alias !== undefined) return this.#lookup(alias)
    return this.#lookup(name) ?? (aliases?.has('*') ? this.#lookup(aliases.get('*')!) : null)
  }

  /** The model a request names: its entry, scanning again once when the name is new; model_not_found (404). */
  async #resolve(name: string | null | undefined): Promise<Entry<M>> {
    if (!name) return this.#defaultEntry()
    let entry = this.#match(name)
    if (!entry) {
      await this.refresh()
      entry = this.#match(name)
    }
    if (!entry) {
      const ids = [...this.#entries.keys()]
      const shown = ids.slice(0, 20).join(', ') + (ids.length > 20 ? ` and ${ids.length - 20} more` : '')
      const target = this.#options.aliases?.get(name)
      const why = target !== undefined ? `The model \`${name}\` is an alias of \`${target}\`, which does not exist` : `The model \`${name}\` does not exist`
      throw new HearthError('model_not_found', `${why}. Available models: ${shown || 'none'}`, 'model')
    }
    return entry
  }

  #defaultEntry(): Entry<M> {
    if (this.#startEntry) return this.#startEntry
    const loaded = [...this.#entries.values()].filter((e) => e.model)
    if (loaded.length === 1) return loaded[0]!
    throw new HearthError('invalid_parameter', `name a model: one of ${[...this.#entries.keys()].slice(0, 20).join(', ')}`, 'model')
  }

  /** The id a name means (aliases included), or null; scans again when the name is new. */
  async idOf(name: string): Promise<string | null> {
    try {
      return (await this.#resolve(name)).id
    } catch {
      return null
    }
  }

  /**
   * The model `name` means, loaded (JIT when it is not and JIT is on; waiting for a load or unload in progress),
   * with a lease that keeps it loaded until released. `purpose` 'generate' refuses embedding models
   * (wrong_model_type). `ttlMs` sets a JIT-loaded model's idle TTL (LM Studio's per-request `ttl`).
   */
  async acquire(name: string | null | undefined, options: { purpose: 'generate' | 'embed'; ttlMs?: number | null } = { purpose: 'generate' }): Promise<Lease<M>> {
    if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
    const entry = await this.#resolve(name)
    const refuse = (kind: string | undefined) => {
      if (options.purpose === 'generate' && kind === 'embeddings') {
        throw new HearthError('wrong_model_type', `\`${entry.id}\` is an embedding model: it serves /v1/embeddings, not text generation`, 'model')
      }
    }
    refuse(entry.scanned.info?.type)
    entry.waiting++
    try {
      for (;;) {
        if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
        if (entry.unloading) await entry.unloading.catch(() => undefined)
        else if (entry.loading) await entry.loading
        else if (entry.model && entry.state === 'loaded') break
        else {
          if (!this.jit) {
            throw new HearthError('model_not_loaded', `The model \`${entry.id}\` is not loaded and JIT loading is off; load it first (hearth load ${entry.id}, or POST /api/v1/models/load)`, 'model')
          }
          await this.#loadEntry(entry, 'jit', {}, options.ttlMs ?? null)
        }
      }
    } finally {
      entry.waiting--
    }
    const model = entry.model!
    refuse(model.kind)
    if (entry.how === 'jit' && options.ttlMs != null) entry.ttlMs = options.ttlMs
    entry.leases++
    entry.lastUsed = performance.now()
    this.#clearTimer(entry)
    let released = false
    return {
      model,
      release: () => {
        if (released) return
        released = true
        entry.leases--
        entry.lastUsed = performance.now()
        if (entry.leases === 0) for (const fn of entry.leaseWaiters.splice(0)) fn()
        this.#armTtl(entry)
      },
    }
  }

  /**
   * Loads `name` explicitly (kept until unloaded, or its `ttlMs` expires). A loaded model is returned as it is
   * (`alreadyLoaded`), whatever `config` says: one instance per model; a JIT-loaded one becomes explicit.
   */
  async load(name: string, config: LoadConfig = {}, options: { ttlMs?: number | null } = {}): Promise<{ model: M; id: string; loadTimeMs: number; alreadyLoaded: boolean }> {
    if (this.#closed) throw new HearthError('shutting_down', 'the server is shutting down')
    const entry = await this.#resolve(name)
    entry.waiting++
    try {
      for (;;) {
        if (entry.unloading) await entry.unloading.catch(() => undefined)
        else if (entry.loading) await entry.loading
        else if (entry.model && entry.state === 'loaded') {
          if (entry.how === 'jit') entry.how = 'explicit'
          if (options.ttlMs !== undefined) entry.ttlMs = options.ttlMs
          else if (entry.how === 'explicit') entry.ttlMs = null
          this.#armTtl(entry)
          return { model: entry.model, id: entry.id, loadTimeMs: 0, alreadyLoaded: true }
        } else {
          const model = await this.#loadEntry(entry, 'explicit', config, options.ttlMs ?? null)
          return { model, id: entry.id, loadTimeMs: entry.loadTimeMs, alreadyLoaded: false }
        }
      }
    } finally {
      entry.waiting--
    }
  }

  /**
   * Unloads `name` once its running and queued requests have ended; resolves with its id. model_not_loaded (404)
   * when it is not loaded (nor loading).
   */
  async unload(name: string): Promise<string> {
    const entry = await this.#resolve(name)
    if (entry.loading) await entry.loading.catch(() => undefined)
    if (entry.unloading) {
      await entry.unloading
      return entry.id
    }
    if (!entry.model) throw new HearthError('model_not_loaded', `The model \`${entry.id}\` is not loaded`, 'instance_id')
    await this.#unload(entry, 'request')
    return entry.id
  }

  /** Unloads every loaded model; resolves with their ids. */
  async unloadAll(): Promise<string[]> {
    const loaded = [...this.#entries.values()].filter((e) => e.model || e.loading)
    await Promise.all(loaded.map((e) => this.unload(e.id).catch(() => undefined)))
    return loaded.map((e) => e.id)
  }

  /** Every model, scanning the folders again first. */
  async list(): Promise<ModelView<M>[]> {
    await this.refresh()
    return this.snapshot()
  }

  /** Every model as of the last scan. */
  snapshot(): ModelView<M>[] {
    const now = performance.now()
    return [...this.#entries.values()].map((e) => ({
      id: e.id,
      scanned: e.scanned,
      state: e.state,
      progress: e.progress,
      error: e.error,
      how: e.how,
      ttlMs: e.ttlMs,
      idleMs: e.model ? (e.leases > 0 || e.model.busy() ? 0 : Math.max(0, now - Math.max(e.idleSince, e.lastUsed))) : null,
      model: e.model,
      loadTimeMs: e.loadTimeMs,
      memoryBytes: this.budget.heldBy(e),
      config: e.config,
    }))
  }

  /** The loaded models. */
  loaded(): M[] {
    return [...this.#entries.values()].flatMap((e) => (e.model && e.state === 'loaded' ? [e.model] : []))
  }

  /** Stops loading, waits for running requests, unloads everything. */
  async close(): Promise<void> {
    this.#closed = true
    const all = [...this.#entries.values()]
    for (const e of all) this.#clearTimer(e)
    await Promise.all(all.map(async (e) => {
      if (e.loading) await e.loading.catch(() => undefined)
      if (e.unloading) await e.unloading.catch(() => undefined)
      if (e.model) await this.#unload(e, 'close').catch(() => undefined)
    }))
  }

  #estimate(entry: Entry<M>, config: LoadConfig): number {
    if (this.#options.estimate) return this.#options.estimate(entry.scanned, config)
    const info = entry.scanned.info
    if (!info) return entry.scanned.sizeBytes
    const plan = planContext(info.maxContextLength || 4096, { ...(config.contextLength ? { contextSize: config.contextLength } : {}), ...(config.parallel ? { parallel: config.parallel } : {}), ...(config.evalBatchSize ? { batchSize: config.evalBatchSize } : {}) })
    const tensorBytes = info.bitsPerWeight && info.nParams ? (info.bitsPerWeight * info.nParams) / 8 : entry.scanned.sizeBytes
    return estimateLoadBytes(info, tensorBytes, { kvCells: plan.kvSize, nSeqMax: info.type === 'embeddings' ? 16 : plan.parallel, nUbatch: info.type === 'embeddings' ? Math.min(info.maxContextLength || 2048, 2048) : plan.ubatchSize })
  }

  /** JIT-loaded models that could go now: no leases, nobody waiting, no work; least recently used first. */
  #evictable(except: Entry<M>): Entry<M>[] {
    return [...this.#entries.values()]
      .filter((e) => e !== except && e.how === 'jit' && e.state === 'loaded' && e.model && e.leases === 0 && e.waiting === 0 && !e.model.busy())
      .sort((a, b) => a.lastUsed - b.lastUsed)
  }

  /** Takes `bytes` of the budget for `entry`, asking prompt caches and then idle JIT models to make room. */
  async #reserve(entry: Entry<M>, bytes: number): Promise<void> {
    for (;;) {
      const idle = this.autoEvict ? this.#evictable(entry) : []
      for (const e of idle) {
        e.giveBack = () => {
          const held = this.budget.heldBy(e)
          void this.#unload(e, 'memory').catch(() => undefined)
          return held
        }
      }
      const caches = [...this.#entries.values()].flatMap((e) => (e !== entry && e.model?.promptCache ? [e.model.promptCache] : []))
      const ok = this.budget.take(entry, bytes, [...this.reclaimFirst, ...caches, ...idle])
      for (const e of idle) delete e.giveBack
      // models evicted to make room are gone before this one loads, so the two never overlap in memory
      const going = [...this.#entries.values()].flatMap((e) => (e.unloading && e !== entry ? [e.unloading.catch(() => undefined)] : []))
      if (ok) {
        await Promise.all(going)
        return
      }
      if (going.length === 0) {
        const mb = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`
        const holders = [...this.#entries.values()].filter((e) => this.budget.heldBy(e) > 0).map((e) => `${e.id} ${mb(this.budget.heldBy(e))}`)
        throw new HearthError(
          'insufficient_memory',
          `loading \`${entry.id}\` needs about ${mb(bytes)} but the memory budget (--max-memory ${mb(this.budget.totalBytes)}) has ${mb(Math.max(0, this.budget.freeBytes))} free` +
            (holders.length ? `; loaded: ${holders.join(', ')} (busy or not JIT-loaded, so not evicted)` : ''),
          'model',
        )
      }
      await Promise.race(going)
    }
  }

  /** Starts (or joins) the load of `entry`. */
  #loadEntry(entry: Entry<M>, how: LoadedHow, config: LoadConfig, ttlMs: number | null): Promise<M> {
    if (entry.loading) return entry.loading
    if (entry.error && entry.errorStamp === entry.scanned.stamp && how === 'jit') return Promise.reject(entry.error)
    entry.state = 'loading'
    entry.progress = 0
    entry.error = null
    entry.how = how
    entry.config = config
    entry.ttlMs = how === 'jit' ? (ttlMs ?? this.defaultTtlMs) : ttlMs
    const loading = this.#runLoad(entry, how, config)
    entry.loading = loading
    // runs before any waiter's continuation: they see the settled state
    loading.then(
      () => {
        entry.loading = null
      },
      (err: unknown) => {
        entry.loading = null
        entry.state = 'error'
        entry.error = toHearthError(err)
        entry.errorStamp = entry.scanned.stamp
        entry.how = null
        this.#emit({ kind: 'load-failed', id: entry.id, error: entry.error })
      },
    )
    return loading
  }

  async #runLoad(entry: Entry<M>, how: LoadedHow, config: LoadConfig): Promise<M> {
    this.#emit({ kind: 'loading', id: entry.id, how })
    const scanned = entry.scanned
    if (scanned.error) throw new HearthError('model_load_failed', `cannot load \`${entry.id}\`: ${scanned.error}`, 'model')
    const estimate = this.#estimate(entry, config)
    const mb = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`
    if (estimate > this.budget.totalBytes) {
      throw new HearthError('model_too_large', `loading \`${entry.id}\` needs about ${mb(estimate)}, more than the whole memory budget (--max-memory ${mb(this.budget.totalBytes)})`, 'model')
    }
    if (how === 'jit' && this.autoEvict) {
      // at most maxModels JIT models: the least recently used go, idle ones first; a busy one goes once its
      // requests have ended (requests that arrive meanwhile wait, then load it again)
      const jit = [...this.#entries.values()].filter((e) => e !== entry && e.how === 'jit' && (e.state === 'loaded' || e.state === 'loading'))
      const candidates = jit
        .filter((e) => e.state === 'loaded' && e.model && e.waiting === 0)
        .sort((a, b) => Number(a.leases > 0 || a.model!.busy()) - Number(b.leases > 0 || b.model!.busy()) || a.lastUsed - b.lastUsed)
      for (let n = jit.length; n >= this.maxModels && candidates.length > 0; n--) void this.#unload(candidates.shift()!, 'evict').catch(() => undefined)
    }
    await this.#reserve(entry, estimate)
    const t0 = performance.now()
    let model: M
    try {
      model = await this.#options.loader(scanned, {
        id: entry.id,
        config,
        onProgress: (p) => {
          entry.progress = p
          this.#emit({ kind: 'progress', id: entry.id, progress: p })
        },
      })
    } catch (err) {
      this.budget.release(entry)
      const e = toHearthError(err)
      throw e.code === 'model_load_failed' || e.code === 'invalid_model' ? new HearthError(e.code, `cannot load \`${entry.id}\` (${scanned.path}): ${e.message}`, 'model') : e
    }
    // llama.cpp's numbers replace the estimate
    const real = model.memoryUse().host
    if (real > estimate && !this.budget.take(entry, real - estimate, [...this.reclaimFirst, ...(this.autoEvict ? this.#evictable(entry) : [])])) {
      await model.dispose()
      this.budget.release(entry)
      throw new HearthError('insufficient_memory', `\`${entry.id}\` took ${mb(real)} once loaded, more than the memory budget has free; unloaded it`, 'model')
    }
    if (real < estimate) this.budget.give(entry, estimate - real)
    entry.model = model
    entry.state = 'loaded'
    entry.progress = 1
    entry.loadTimeMs = performance.now() - t0
    entry.lastUsed = performance.now()
    this.#emit({ kind: 'loaded', id: entry.id, how, ms: entry.loadTimeMs, bytes: this.budget.heldBy(entry) })
    this.#armTtl(entry)
    return model
  }

  #unload(entry: Entry<M>, reason: UnloadReason): Promise<void> {
    if (entry.unloading) return entry.unloading
    const model = entry.model
    if (!model) return Promise.resolve()
    entry.state = 'unloading'
    this.#clearTimer(entry)
    const unloading = (async () => {
      this.#emit({ kind: 'unloading', id: entry.id, reason })
      while (entry.leases > 0 || model.busy()) {
        if (entry.leases > 0) await new Promise<void>((r) => entry.leaseWaiters.push(r))
        else await model.idle()
      }
      try {
        await model.dispose()
      } finally {
        entry.model = null
        entry.state = 'not-loaded'
        entry.how = null
        entry.ttlMs = null
        entry.progress = 0
        this.budget.release(entry)
        this.#emit({ kind: 'unloaded', id: entry.id, reason })
      }
    })()
    entry.unloading = unloading
    const done = () => {
      entry.unloading = null
    }
    unloading.then(done, done)
    return unloading
  }

  #clearTimer(entry: Entry<M>): void {
    if (entry.timer) clearTimeout(entry.timer)
    entry.timer = null
  }

  /** Notes when the model went idle and, when it has a TTL, unloads it after that long without work. */
  #armTtl(entry: Entry<M>): void {
    this.#clearTimer(entry)
    const model = entry.model
    if (entry.state !== 'loaded' || !model || entry.leases > 0 || this.#closed) return
    if (model.busy()) {
      if (!entry.watchingIdle) {
        entry.watchingIdle = true
        void model.idle().then(() => {
          entry.watchingIdle = false
          if (entry.model === model) this.#armTtl(entry)
        })
      }
      return
    }
    entry.idleSince = performance.now()
    if (entry.ttlMs === null) return
    entry.timer = setTimeout(() => {
      entry.timer = null
      if (entry.model === model && entry.state === 'loaded' && entry.leases === 0 && entry.waiting === 0 && !model.busy()) void this.#unload(entry, 'ttl').catch(() => undefined)
      else this.#armTtl(entry)
    }, Math.min(entry.ttlMs, MAX_TTL_MS))
    entry.timer.unref()
  }
}

/** Maps a load's config onto Model/EmbeddingModel options over the server's defaults. */
/**
 * Loads a scanned model with `base`'s options. A projector named in `base` (--mmproj, --no-mmproj) is for the start
 * model at `startPath` only; every other model takes the `mmproj-*.gguf` beside it, if any (Model.load pairs it).
 */
export function modelLoader(base: ModelOptions, startPath: string): Loader<ServedModel> {
  return async (scanned, { id, config, onProgress }) => {
    if (scanned.info?.type === 'embeddings') {
      for (const [field, v] of [['eval_batch_size', config.evalBatchSize], ['flash_attention', config.flashAttention], ['parallel', config.parallel]] as const) {
        if (v !== undefined) throw new HearthError('unsupported_parameter', `${field} does not apply to an embedding model (${id})`, field)
      }
      return EmbeddingModel.load(scanned.path, {
        id,
        onProgress,
        ...(config.contextLength !== undefined ? { contextSize: config.contextLength } : {}),
        ...(base.threads !== undefined ? { threads: base.threads } : base.threadShare ? { threads: base.threadShare.total } : {}),
        ...(base.maxEmbeddingQueue !== undefined ? { maxEmbeddingQueue: base.maxEmbeddingQueue } : {}),
        ...(base.gpuLayers !== undefined ? { gpuLayers: base.gpuLayers } : {}),
      })
    }
    const { projector, ...rest } = base
    const isStart = resolve(scanned.path) === resolve(startPath)
    return Model.load(scanned.path, {
      ...rest,
      ...(isStart && projector !== undefined ? { projector } : {}),
      id,
      onProgress,
      ...(config.contextLength !== undefined ? { contextSize: config.contextLength } : {}),
      ...(config.evalBatchSize !== undefined ? { batchSize: config.evalBatchSize } : {}),
      ...(config.flashAttention !== undefined ? { flashAttention: config.flashAttention ? 'on' : 'off' } : {}),
      ...(config.parallel !== undefined ? { parallel: config.parallel } : {}),
    })
  }
}

// Model: a loaded GGUF model with its generation context, scheduler, chat template and (lazily) an
// embedding context. The public entry point of the library.
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, join } from 'node:path'
import { prepareChat, type ChatRequest } from './chat.js'
import { PlainOutput } from './chat-output.js'
import { FALLBACK_CHAT_TEMPLATE, FALLBACK_STOPS, type ChatMessage } from './chat-template.js'
import { MEDIA_DEFAULTS, type MediaOptions } from './chat-media.js'
import { EmbeddingQueue, type EmbeddingQueueStats } from './embedding-queue.js'
import { HearthError, invalidParam, toHearthError } from './errors.js'
import { Generation, type PreparedRequest } from './generation.js'
import { checkGrammarLimits } from './grammar-limits.js'
import { chooseKvLayout, type KvLayout, type KvLayoutChoice } from './kv-layout.js'
import { MemoryBudget } from './memory-budget.js'
import {
  KV_CACHE_TYPES,
  native,
  packageRoot,
  type KvCacheType,
  type NativeChatTemplates,
  type NativeContext,
  type NativeContextFacts,
  type NativeMemoryUse,
  type NativeModel,
  type NativeModelFacts,
  type NativeSeqState,
} from './native.js'
import { MediaProjector, pairedProjector, type MediaSpan } from './media.js'
import { samplingParams, type SamplingInput, type SamplingParams } from './params.js'
import { PromptCache } from './prompt-cache.js'
import { promptTokenLists } from './prompt-tokens.js'
import { Scheduler, type SchedulerStats, type StepContext } from './scheduler.js'
import type { Sequence } from './sequence.js'
import type { ThreadShare } from './thread-share.js'
import { PreservingPieces, TokenPieces, type PieceSource } from './token-text.js'

/** The built-in model: a 2.6M-parameter llama trained for hearth on Austen and the KJV (models/README.md). */
export const defaultModelPath = join(packageRoot, 'models', 'austen-kjv-2.6m-f32.gguf')

export interface ModelOptions {
  /** tokens one sequence may hold (prompt + output); default min(trained context, 4096) */
  contextSize?: number
  /** sequences decoded together; default 8 */
  parallel?: number
  /** KV cells in all; default contextSize × parallel, at most 16384 (per-seq: contextSize × parallel) */
  kvSize?: number
  /** one pool of cells for all sequences, or a stream of kvSize / parallel cells per sequence (each attends over
   * its own cells only); auto chooses by the rule in lib/kv-layout.ts. Default auto */
  kvLayout?: KvLayoutChoice
  /** KV cache element types; default f16. A quantized V cache needs flash attention (not 'off') */
  cacheTypeK?: KvCacheType
  cacheTypeV?: KvCacheType
  /** most bytes of host RAM for prompts whose KV cells had to be given up (restored when a later prompt extends
   * one); 0 turns it off. Default a quarter of the memory budget's free bytes at load, at most 8 GiB */
  cacheRamBytes?: number
  /** the memory budget the RAM prompt cache takes its bytes from; default MemoryBudget.fromMachine() */
  memoryBudget?: MemoryBudget
  /** tokens per decode step (prompt chunks + next tokens); default 2048, as llama-server's: prompts waiting beside
   * many streams are computed in a quarter of the steps, each of which also decodes every stream (bench scenario 6) */
  batchSize?: number
  /** physical batch for llama.cpp; default min(batchSize, 512) */
  ubatchSize?: number
  /** CPU threads for generation; default the number of CPUs */
  threads?: number
  /** CPU threads for prompt processing; default `threads` */
  threadsBatch?: number
  /** layers offloaded to the GPU in a GPU build; default all */
  gpuLayers?: number
  flashAttention?: 'auto' | 'on' | 'off'
  /** requests that may wait for a slot; default 64 */
  maxQueue?: number
  /** reuse KV cells of earlier requests with a shared prompt prefix; default true */
  promptCache?: boolean
  /** context of the embedding context (longest input for embed()); default min(trained context, 2048) */
  embeddingContextSize?: number
  /** embed() inputs admitted and not yet embedded, all calls together; past it embed() throws queue_full; 8192 */
  maxEmbeddingQueue?: number
  /** Jinja source used instead of the GGUF's chat template (the usual fix for broken or tool-less templates) */
  chatTemplate?: string
  /** called with 0..1 while the weights load */
  onProgress?: (progress: number) => void
  /** decode one token after loading so the first request does not pay for paging the weights in; default true */
  warmup?: boolean
  /**
   * a multimodal projector (mmproj GGUF) that lets chats carry images (and audio, if it has an audio encoder);
   * default an `mmproj-*.gguf` beside the model (lib/media.ts pairedProjector), false for none. A named one that
   * fails to load fails the load; one found beside the model is skipped with a warning (the model serves text)
   */
  projector?: string | false
  /** limits and the remote fetcher for media parts */
  media?: MediaOptions
  /** the name the model answers to and reports (`model.id`); default the file name without .gguf */
  id?: string
  /** CPU threads shared with other models (lib/thread-share.ts): the context is created with `threads` (default
   * the share's total) and uses its share of them in each step */
  threadShare?: ThreadShare
}

/** The context a load makes, from the model's trained context and the options (the defaults of ModelOptions). */
export function planContext(nCtxTrain: number, options: ModelOptions): ContextPlan {
  const contextSize = options.contextSize ?? Math.min(nCtxTrain, 4096)
  const parallel = options.parallel ?? 8
  checkPositive('contextSize', contextSize)
  checkPositive('parallel', parallel)
  const layout = chooseKvLayout({ choice: options.kvLayout ?? 'auto', parallel, contextSize, kvSize: options.kvSize })
  const kvSize = options.kvSize ?? (layout === 'per-seq' ? contextSize * parallel : Math.max(contextSize, Math.min(contextSize * parallel, 16384)))
  if (kvSize < contextSize) throw invalidParam('kvSize', 'kvSize must be at least contextSize')
  checkKvCache(options)
  const batchSize = options.batchSize ?? 2048
  return { contextSize, parallel, kvSize, batchSize, ubatchSize: options.ubatchSize ?? Math.min(batchSize, 512), layout }
}

export interface ContextPlan {
  contextSize: number
  parallel: number
  kvSize: number
  batchSize: number
  ubatchSize: number
  layout: KvLayout
}

export interface TokenizeOptions {
  /** add BOS/EOS as the model wants (default true) */
  addSpecial?: boolean
  /** turn special-token text such as <|im_start|> into its token (default false) */
  parseSpecial?: boolean
}

export interface GenerateOptions extends SamplingInput {
  signal?: AbortSignal
}

/** Raw prompts, no template: a text, token ids, or a list of either (each gets its own choices). */
export interface TextRequest {
  prompt: string | ArrayLike<number> | (string | ArrayLike<number>)[]
  /** fill in the middle: the text after the gap, for models with FIM tokens (the prompt is the text before it) */
  suffix?: string
  sampling?: SamplingInput
  /** choices per prompt; default 1 */
  n?: number
  signal?: AbortSignal
}

/** Most choices one request may ask for per prompt. */
export const MAX_CHOICES = 16
// inputs one native embed call (one llama_decode, one chunk of the embedding queue) takes at most
const EMBED_INPUTS_PER_CALL = 16

export interface EmbeddingResult {
  vectors: Float32Array[]
  /** tokens read, all inputs together */
  promptTokens: number
}

export class Model {
  /** a model that generates (EmbeddingModel's is 'embeddings') */
  readonly kind = 'llm' as const
  readonly path: string
  /** the file name without .gguf: the id the server lists */
  readonly id: string
  readonly facts: Readonly<Omit<NativeModelFacts, 'metadata'>>
  readonly metadata: Readonly<Record<string, string>>
  readonly context: Readonly<NativeContextFacts>
  /** the chat template through llama.cpp's chat layer: the model's, the override, or hearth's fallback */
  readonly chatTemplates: NativeChatTemplates
  /** stop strings the template in use implies (the fallback's "\nUser:") */
  readonly templateStops: readonly string[]
  readonly pieces: TokenPieces
  /** token pieces with special tokens as their text (for preserved tool-call markers) */
  readonly #specialPieces: TokenPieces
  readonly #preserving = new Map<string, PieceSource | null>()
  /** the longest token's bytes: a text longer than n times this cannot be n tokens or fewer */
  readonly #maxPieceBytes: number
  readonly eog: Int32Array
  readonly scheduler: Scheduler
  /** prompts whose KV cells were given up, kept in host RAM to be restored (null when turned off) */
  readonly promptCache: PromptCache<NativeSeqState> | null
  /** the multimodal projector, when one was loaded */
  readonly projector: MediaProjector | null
  readonly mediaOptions: Readonly<MediaOptions>
  readonly #native: NativeModel
  readonly #ctx: NativeContext
  /** the KV cache as created: its layout and element types */
  readonly kvCache: Readonly<{ layout: 'unified' | 'per-seq'; typeK: KvCacheType; typeV: KvCacheType; flashAttention: 'auto' | 'on' | 'off' }>
  readonly #options: ModelOptions
  #embedder: Promise<EmbeddingQueue> | null = null
  #embedQueue: EmbeddingQueue | null = null
  #disposed = false
  /** what llama.cpp reports the weights, contexts and compute buffers hold (measured when each is made) */
  #memory: NativeMemoryUse
  #threads: number

  private constructor(
    path: string,
    m: NativeModel,
    ctx: NativeContext,
    templates: NativeChatTemplates,
    options: ModelOptions,
    parallel: number,
    contextSize: number,
    projector: MediaProjector | null,
  ) {
    this.path = path
    this.projector = projector
    this.mediaOptions = { ...MEDIA_DEFAULTS, ...options.media }
    this.id = options.id ?? basename(path).replace(/\.gguf$/i, '')
    this.#native = m
    this.#ctx = ctx
    this.#options = options
    const { metadata, ...facts } = m.facts()
    this.facts = facts
    this.metadata = metadata
    this.context = ctx.facts()
    this.pieces = new TokenPieces(m.tokenPieces(false))
    this.#specialPieces = new TokenPieces(m.tokenPieces(true))
    this.#maxPieceBytes = Math.max(1, this.#specialPieces.longest)
    this.eog = m.eogTokens()
    this.chatTemplates = templates
    this.templateStops = templates.source === FALLBACK_CHAT_TEMPLATE ? FALLBACK_STOPS : []
    const layout = this.context.kvUnified ? 'unified' : 'per-seq'
    this.kvCache = { layout, typeK: options.cacheTypeK ?? 'f16', typeV: options.cacheTypeV ?? 'f16', flashAttention: options.flashAttention ?? 'auto' }
    this.#memory = ctx.memory()
    this.#threads = this.context.nThreads
    const share = options.threadShare
    this.scheduler = new Scheduler(share ? this.#sharingThreads(ctx, share) : ctx, this.pieces, this.eog, {
      nParallel: parallel,
      maxQueue: options.maxQueue ?? 64,
      nBatch: this.context.nBatch,
      nCtx: this.context.nCtx,
      nCtxSeq: contextSize,
      promptCache: options.promptCache ?? true,
      kvLayout: layout,
      ramCache: (this.promptCache = ramCache(options)),
    })
    share?.add(this)
  }

  /** The context as the scheduler sees it, taking this model's share of the threads before each step. */
  #sharingThreads(ctx: NativeContext, share: ThreadShare): StepContext {
    return new Proxy(ctx, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop) as unknown
        if (prop === 'step') {
          return (...args: Parameters<NativeContext['step']>) => {
            const n = share.threadsFor(this)
            if (n !== this.#threads) this.#threads = target.setThreads(n, n)[0]
            return target.step(...args)
          }
        }
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  }

  /** Loads weights and creates the generation context, off the JS thread. */
  static async load(path: string = defaultModelPath, options: ModelOptions = {}): Promise<Model> {
    // a folder would reach llama.cpp as an unreadable "empty file"
    if ((await stat(path).catch(() => null))?.isDirectory()) throw new HearthError('invalid_model', `${path} is a folder, not a GGUF model file`)
    // progress: the weights are 90%, the context and the warm-up the rest, so 100% means ready to serve
    const progress = options.onProgress
    const m = await native
      .loadModel(path, { ...(options.gpuLayers !== undefined ? { gpuLayers: options.gpuLayers } : {}) }, progress ? (p) => progress(p * 0.9) : undefined)
      .catch((err: unknown) => {
        throw toHearthError(err)
      })
    try {
      const facts = m.facts()
      const { contextSize, parallel, kvSize, batchSize, ubatchSize, layout } = planContext(facts.nCtxTrain, options)
      const threads = options.threads ?? options.threadShare?.total ?? availableParallelism()
      const ctx = await native.createContext(m, {
        nCtx: kvSize,
        nSeqMax: parallel,
        nBatch: batchSize,
        nUbatch: ubatchSize,
        threads,
        threadsBatch: options.threadsBatch ?? threads,
        kvUnified: layout === 'unified',
        flashAttention: options.flashAttention ?? 'auto',
        typeK: options.cacheTypeK ?? 'f16',
        typeV: options.cacheTypeV ?? 'f16',
      })
      progress?.(0.95)
      if (options.warmup ?? true) {
        // touches every weight once (mmap'ed pages, repacked buffers), as llama-server does at start-up
        const token = Int32Array.of(facts.bos >= 0 ? facts.bos : 0)
        await ctx.step(token, Int32Array.of(0), Int32Array.of(0), Int32Array.of(0)).catch((err: unknown) => {
          ctx.dispose()
          throw err
        })
        ctx.seqRemove(0)
      }
      // a base model without a template gets hearth's plain transcript rather than the library's ChatML
      const override = options.chatTemplate ?? (facts.chatTemplate ? undefined : FALLBACK_CHAT_TEMPLATE)
      const templates = await native.createChatTemplates(m, override).catch((err: unknown) => {
        ctx.dispose()
        throw err
      })
      let projector: MediaProjector | null = null
      const projectorPath = options.projector === false ? null : (options.projector ?? (await pairedProjector(path)))
      if (projectorPath) {
        const projectorOptions = { threads, gpu: (options.gpuLayers ?? -1) !== 0, maxPixels: options.media?.maxPixels ?? MEDIA_DEFAULTS.maxPixels }
        projector = await MediaProjector.load(m, projectorPath, projectorOptions).catch((err: unknown) => {
          if (options.projector === undefined) {
            process.emitWarning(`hearth: ${projectorPath} beside ${path} is not a projector for it, so the model serves text only: ${toHearthError(err).message}`)
            return null
          }
          ctx.dispose()
          throw err
        })
      }
      const model = new Model(path, m, ctx, templates, options, parallel, contextSize, projector)
      progress?.(1)
      return model
    } catch (err) {
      m.dispose()
      throw toHearthError(err)
    }
  }

  tokenize(text: string, options: TokenizeOptions = {}): Int32Array {
    return this.#native.tokenize(text, options.addSpecial ?? true, options.parseSpecial ?? false)
  }

  /**
   * Text of `tokens`, the inverse of tokenize(): BOS/EOS and the tokenizer's leading space are removed.
   * With `special`, special tokens are rendered as their text and nothing is removed.
   */
  detokenize(tokens: Int32Array | number[], special = false): string {
    let t = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens)
    // llama.cpp keeps the leading space when it strips BOS itself; strip BOS here so it goes too
    if (!special && t.length > 0 && t[0] === this.facts.bos) t = t.subarray(1)
    return this.#native.detokenize(t, !special, special)
  }

  /**
   * Generates from a prompt (text is tokenized with BOS as the model wants). Iterate for text pieces;
   * `seq.result` has the finish reason and token counts; `break` or `signal` cancels and frees the slot.
   */
  generate(prompt: string | Int32Array, options: GenerateOptions = {}): Sequence {
    const { signal, ...sampling } = options
    return this.submit(typeof prompt === 'string' ? this.tokenize(prompt) : prompt, samplingParams(sampling), signal)
  }

  /**
   * Runs one request, a chat (through the model's template) or raw prompts: every choice is submitted at once, so
   * an admission error (400/429/503) rejects before anything is generated. Listen to the generation's events or
   * iterate them; its `result` has every choice's message and the usage.
   */
  async run(request: ChatRequest | TextRequest): Promise<Generation> {
    if (this.#disposed) throw new HearthError('model_disposed', 'the model was disposed')
    const n = request.n ?? 1
    if (!Number.isInteger(n) || n < 1 || n > MAX_CHOICES) throw invalidParam('n', `n must be an integer between 1 and ${MAX_CHOICES}`)
    const prepared = 'messages' in request ? await prepareChat(this, request) : await this.#prepareText(request)
    prepared.prompts.forEach((p, i) => this.#checkRequest(p, prepared.params, prepared.media?.[i]))
    return new Generation(this.scheduler, prepared)
  }

  /**
   * A request's text as tokens, off the JS thread (tokenizers are superlinear on some inputs), after refusing text
   * that cannot fit in `maxTokens` however it tokenizes: no token holds more than the vocabulary's longest piece.
   */
  async tokenizeText(text: string, options: TokenizeOptions & { maxTokens: number; param: string }): Promise<Int32Array> {
    const bytes = Buffer.byteLength(text)
    if (bytes > options.maxTokens * this.#maxPieceBytes) {
      throw new HearthError('context_length_exceeded', `${options.param} has ${bytes} bytes, more than ${options.maxTokens} tokens can hold`, options.param)
    }
    return this.#native.tokenizeAsync(text, options.addSpecial ?? true, options.parseSpecial ?? false)
  }

  /**
   * Every prompt form (a text, token ids, or a list of either) as token arrays; texts get BOS as the model wants.
   * Token ids are checked against the vocabulary. `param` names the input in errors; a text that cannot fit in
   * `maxTokens` is refused before it is tokenized.
   */
  async tokenizePrompts(raw: TextRequest['prompt'], param = 'prompt', maxTokens = this.scheduler.options.nCtxSeq): Promise<Int32Array[]> {
    return promptTokenLists(raw, (text) => this.tokenizeText(text, { maxTokens, param }), this.facts.nVocab, param)
  }

  async #prepareText(request: TextRequest): Promise<PreparedRequest> {
    const prompts = request.suffix === undefined ? await this.tokenizePrompts(request.prompt) : await this.#infillPrompts(request.prompt, request.suffix)
    return {
      prompts,
      params: samplingParams(request.sampling),
      n: request.n ?? 1,
      output: () => new PlainOutput(),
      ...(request.signal ? { signal: request.signal } : {}),
    }
  }

  /**
   * Fill-in-the-middle prompts in llama.cpp's prefix-suffix-middle order: [BOS] <fim_pre> prefix <fim_suf> suffix
   * <fim_mid>, after which the model writes the middle.
   */
  async #infillPrompts(raw: TextRequest['prompt'], suffix: string): Promise<Int32Array[]> {
    const { fimPre, fimSuf, fimMid, bos, addBos } = this.facts
    if (fimPre < 0 || fimSuf < 0 || fimMid < 0) {
      throw new HearthError('unsupported_parameter', `suffix (fill-in-the-middle) needs a model with FIM tokens; ${this.id} has none`, 'suffix')
    }
    const maxTokens = this.scheduler.options.nCtxSeq
    const after = await this.tokenizeText(suffix, { addSpecial: false, maxTokens, param: 'suffix' })
    const list = typeof raw === 'string' || (raw.length > 0 && typeof raw[0] === 'number') ? [raw as string | ArrayLike<number>] : (raw as (string | ArrayLike<number>)[])
    return Promise.all(list.map(async (p) => {
      const before = typeof p === 'string' ? await this.tokenizeText(p, { addSpecial: false, maxTokens, param: 'prompt' }) : (await this.tokenizePrompts([p]))[0]!
      return Int32Array.from([...(addBos && bos >= 0 ? [bos] : []), fimPre, ...before, fimSuf, ...after, fimMid])
    }))
  }

  /** A chat through the model's template (tools, formats and reasoning as `run` takes them). */
  chat(messages: ChatMessage[], options: Omit<ChatRequest, 'messages'> = {}): Promise<Generation> {
    return this.run({ ...options, messages })
  }

  /** The prompt tokens a chat request renders to (with everything the request's options add to it). */
  async chatPrompt(messages: ChatMessage[], options: Omit<ChatRequest, 'messages' | 'n' | 'signal'> = {}): Promise<Int32Array> {
    return (await prepareChat(this, { ...options, messages })).prompts[0]!
  }

  /** A rendered chat prompt as tokens: special-token text parsed, BOS added unless the template already wrote it. */
  async chatTokens(text: string): Promise<Int32Array> {
    const bos = this.chatBos(text)
    const tokens = await this.tokenizeText(text, { addSpecial: false, parseSpecial: true, maxTokens: this.scheduler.options.nCtxSeq, param: 'messages' })
    if (bos < 0) return tokens
    const out = new Int32Array(tokens.length + 1)
    out[0] = bos
    out.set(tokens, 1)
    return out
  }

  /** The BOS token a rendered chat prompt needs in front, or -1 (the model adds none, or the template wrote it). */
  chatBos(text: string): number {
    const bosText = this.facts.bos >= 0 ? this.detokenize([this.facts.bos], true) : ''
    return this.facts.addBos && !(bosText && text.startsWith(bosText)) ? this.facts.bos : -1
  }

  /** tokens one embedding input may have */
  get embeddingContextSize(): number {
    return this.#options.embeddingContextSize ?? Math.min(this.facts.nCtxTrain, 2048)
  }

  /** A token's bytes with special tokens as their text (what a chat template wrote). */
  specialBytes(token: number): Uint8Array {
    return this.#specialPieces.bytes(token)
  }

  /**
   * Token pieces in which these special tokens (a chat format's tool-call markers) show as their text, or null
   * when none of them is a single special token of this vocabulary.
   */
  piecesPreserving(preserved: readonly string[]): PieceSource | null {
    const key = preserved.join('\u0000')
    if (!this.#preserving.has(key)) {
      const ids = new Set<number>()
      for (const text of preserved) {
        const t = this.#native.tokenize(text, false, true)
        if (t.length === 1) ids.add(t[0]!)
      }
      this.#preserving.set(key, ids.size ? new PreservingPieces(this.pieces, this.#specialPieces, ids) : null)
    }
    return this.#preserving.get(key)!
  }

  /** Queues validated parameters over prompt tokens. */
  submit(prompt: Int32Array, params: SamplingParams, signal?: AbortSignal): Sequence {
    if (this.#disposed) throw new HearthError('model_disposed', 'the model was disposed')
    this.#checkRequest(prompt, params)
    return this.scheduler.submit(prompt, params, signal ? { signal } : {})
  }

  /** What must be refused before anything reaches the native side: tokens outside the vocabulary, bad grammars. */
  #checkRequest(prompt: Int32Array, params: SamplingParams, media?: readonly MediaSpan[]): void {
    if (!(prompt instanceof Int32Array)) throw invalidParam('prompt', 'prompt tokens must be an Int32Array')
    // the native step would refuse the batch later, where one bad request cannot be told from the others
    const nVocab = this.facts.nVocab
    let span = 0
    for (let i = 0; i < prompt.length; i++) {
      // media positions hold pseudo-tokens and are decoded from embeddings
      while (media && span < media.length && media[span]!.end <= i) span++
      if (media && span < media.length && i >= media[span]!.start) continue
      const token = prompt[i]!
      if (!(token >= 0 && token < nVocab)) {
        throw new HearthError('invalid_token', `prompt token ${token} at index ${i} is outside the vocabulary (0..${nVocab - 1})`, 'prompt')
      }
    }
    for (const token of params.logitBias.keys()) {
      if (token < 0 || token >= this.facts.nVocab) {
        throw new HearthError('invalid_token', `logit_bias token ${token} is outside the vocabulary (0..${this.facts.nVocab - 1})`, 'logit_bias')
      }
    }
    if (params.grammar) {
      // llama.cpp's grammar code recurses and copies without bounds: measure before it parses
      checkGrammarLimits(params.grammar)
      try {
        this.#native.checkGrammar(params.grammar)
      } catch (err) {
        throw new HearthError('invalid_grammar', (err as Error).message, 'grammar')
      }
    }
  }

  /**
   * Pooled, L2-normalised embeddings, one vector per input. Calls share one embedder through a bounded queue that
   * interleaves them in chunks (lib/embedding-queue.ts): queue_full when it is full; `signal` drops the call.
   */
  async embed(inputs: (string | Int32Array)[], options: { signal?: AbortSignal } = {}): Promise<EmbeddingResult> {
    if (this.#disposed) throw new HearthError('model_disposed', 'the model was disposed')
    const maxTokens = this.embeddingContextSize
    const tokens = await Promise.all(inputs.map((x, i) => (typeof x === 'string' ? this.tokenizeText(x, { maxTokens, param: `input[${i}]` }) : x)))
    const queue = await this.#getEmbedder()
    const vectors = await queue.submit(tokens, options.signal)
    return { vectors, promptTokens: tokens.reduce((n, t) => n + t.length, 0) }
  }

  /** The embedding queue's counters (zeros until the first embed()). */
  embeddingStats(): EmbeddingQueueStats {
    return this.#embedQueue?.stats() ?? { requests: 0, inputs: 0, chunks: 0, aborted: 0 }
  }

  #getEmbedder(): Promise<EmbeddingQueue> {
    this.#embedder ??= native
      .createEmbedder(this.#native, {
        nCtx: this.embeddingContextSize,
        nSeqMax: EMBED_INPUTS_PER_CALL,
        threads: this.#options.threads ?? availableParallelism(),
      })
      .then((e) => {
        const used = e.memory()
        this.#memory = { ...this.#memory, context: this.#memory.context + used.context, compute: this.#memory.compute + used.compute, host: this.#memory.host + used.host - used.hostModel }
        return (this.#embedQueue = new EmbeddingQueue(e, { nVocab: this.facts.nVocab, maxQueue: this.#options.maxEmbeddingQueue }))
      })
    return this.#embedder
  }

  stats(): SchedulerStats {
    return this.scheduler.stats()
  }

  /**
   * Bytes this model holds as llama.cpp reports them: the weights once, the generation context's KV cache and
   * compute buffers, and the embedding context's once embed() has made it. `host` is the part in RAM.
   */
  memoryUse(): Readonly<NativeMemoryUse> {
    return this.#memory
  }

  /** CPU threads the context used for its last step (its share while other models are busy too). */
  get threads(): number {
    return this.#threads
  }

  /** It has requests running or queued (generations or embeddings). */
  busy(): boolean {
    const s = this.scheduler.stats()
    return s.active + s.queued > 0 || (this.#embedQueue?.stats().requests ?? 0) > 0
  }

  /** Resolves when no generation runs or waits and no embedding is admitted (it may be busy again by the time
   * its caller runs: check busy()). */
  async idle(): Promise<void> {
    await this.scheduler.idle()
    await this.#embedQueue?.idle()
  }

  /** Waits for running requests to end, then frees the contexts and the weights. */
  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    this.#options.threadShare?.remove(this)
    await this.scheduler.close()
    if (this.#embedder) await (await this.#embedder.catch(() => null))?.close()
    this.#ctx.dispose()
    this.projector?.dispose()
    this.#native.dispose()
    // the KV cache and compute buffers just freed would otherwise stay in the allocator, and RSS climb per reload
    native.trimHeap()
  }
}

/** The KV cache types and flash attention as llama.cpp can take them. */
function checkKvCache(o: ModelOptions): void {
  for (const [name, v] of [['cacheTypeK', o.cacheTypeK], ['cacheTypeV', o.cacheTypeV]] as const) {
    if (v !== undefined && !(KV_CACHE_TYPES as readonly string[]).includes(v)) throw invalidParam(name, `${name} must be one of ${KV_CACHE_TYPES.join(', ')}`)
  }
  if (o.flashAttention !== undefined && !['auto', 'on', 'off'].includes(o.flashAttention)) throw invalidParam('flashAttention', 'flashAttention must be auto, on or off')
  // llama.cpp keeps a quantized V cache only with flash attention (its kernel reads it; the other path cannot)
  if ((o.cacheTypeV ?? 'f16') !== 'f16' && o.flashAttention === 'off') {
    throw invalidParam('cacheTypeV', `a ${o.cacheTypeV} V cache needs flash attention; use flashAttention 'auto' or 'on', or cacheTypeV f16`)
  }
  if (o.cacheRamBytes !== undefined && !(Number.isFinite(o.cacheRamBytes) && o.cacheRamBytes >= 0)) throw invalidParam('cacheRamBytes', 'cacheRamBytes must be a number of bytes >= 0')
}

/**
 * Below this many tokens a saved prompt is neither kept nor restored. Restoring was 1,000x cheaper than computing
 * at every length measured (bench/restore-crossover.ts, DEVELOPERS.md): the floor only keeps tiny entries, worth a
 * few hundred milliseconds, from costing a save between steps each.
 */
export const MIN_RESTORE_TOKENS = 16

/** The RAM prompt cache a model's scheduler gets, or null when turned off. */
function ramCache(o: ModelOptions): PromptCache<NativeSeqState> | null {
  if ((o.promptCache ?? true) === false) return null
  const budget = o.memoryBudget ?? MemoryBudget.fromMachine()
  const maxBytes = o.cacheRamBytes ?? Math.min(8 * 2 ** 30, Math.floor(budget.freeBytes / 4))
  if (maxBytes <= 0) return null
  return new PromptCache<NativeSeqState>({ maxBytes, budget, minTokens: MIN_RESTORE_TOKENS })
}

function checkPositive(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw invalidParam(name, `${name} must be a positive integer`)
}

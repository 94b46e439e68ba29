// EmbeddingModel: a loaded encoder (BERT-style: bge, nomic, e5 ...) that only embeds. It has no generation
// context, scheduler or chat template: llama.cpp cannot decode text with these architectures, so a generating
// Model would fail at its first step. Pooling is the model's own (its GGUF's pooling_type).
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename } from 'node:path'
import { EmbeddingQueue, type EmbeddingQueueStats } from './embedding-queue.js'
import { HearthError, toHearthError } from './errors.js'
import type { EmbeddingResult } from './model.js'
import { native, type NativeMemoryUse, type NativeModel, type NativeModelFacts } from './native.js'
import { promptTokenLists, type PromptInput } from './prompt-tokens.js'
import { TokenPieces } from './token-text.js'

export interface EmbeddingModelOptions {
  /** the name it answers to; default the file name without .gguf */
  id?: string
  /** tokens one input may have (the embedding context); default min(trained context, 2048) */
  contextSize?: number
  /** CPU threads; default the number of CPUs */
  threads?: number
  /** inputs admitted and not yet embedded, all calls together; default 8192 */
  maxEmbeddingQueue?: number
  /** inputs one native embed call takes at most (sequences of the embedding context); default 16 */
  inputsPerCall?: number
  /** layers offloaded to the GPU in a GPU build; default all */
  gpuLayers?: number
  /** called with 0..1 while the weights load */
  onProgress?: (progress: number) => void
}

export class EmbeddingModel {
  readonly kind = 'embeddings' as const
  readonly path: string
  readonly id: string
  readonly facts: Readonly<Omit<NativeModelFacts, 'metadata'>>
  readonly metadata: Readonly<Record<string, string>>
  /** the embedding context: longest input (nCtx) and pooling */
  readonly context: Readonly<{ nCtx: number; nSeqMax: number; pooling: string }>
  readonly #native: NativeModel
  readonly #queue: EmbeddingQueue
  readonly #memory: NativeMemoryUse
  /** the longest token's bytes: a text longer than n times this cannot be n tokens or fewer */
  readonly #maxPieceBytes: number
  #disposed = false

  private constructor(path: string, id: string, m: NativeModel, queue: EmbeddingQueue, memory: NativeMemoryUse, context: EmbeddingModel['context']) {
    this.path = path
    this.id = id
    this.#native = m
    const { metadata, ...facts } = m.facts()
    this.facts = facts
    this.metadata = metadata
    this.#queue = queue
    this.#memory = memory
    this.context = context
    this.#maxPieceBytes = Math.max(1, new TokenPieces(m.tokenPieces(true)).longest)
  }

  /** Loads weights and creates the embedding context, off the JS thread. */
  static async load(path: string, options: EmbeddingModelOptions = {}): Promise<EmbeddingModel> {
    if ((await stat(path).catch(() => null))?.isDirectory()) throw new HearthError('invalid_model', `${path} is a folder, not a GGUF model file`)
    const progress = options.onProgress
    const m = await native
      .loadModel(path, { ...(options.gpuLayers !== undefined ? { gpuLayers: options.gpuLayers } : {}) }, progress ? (p) => progress(p * 0.95) : undefined)
      .catch((err: unknown) => {
        throw toHearthError(err)
      })
    try {
      const facts = m.facts()
      const embedder = await native.createEmbedder(m, {
        nCtx: options.contextSize ?? Math.min(facts.nCtxTrain, 2048),
        nSeqMax: options.inputsPerCall ?? 16,
        threads: options.threads ?? availableParallelism(),
      })
      const memory = embedder.memory()
      const f = embedder.facts()
      const queue = new EmbeddingQueue(embedder, { nVocab: facts.nVocab, maxQueue: options.maxEmbeddingQueue })
      const model = new EmbeddingModel(path, options.id ?? basename(path).replace(/\.gguf$/i, ''), m, queue, memory, { nCtx: f.nCtx, nSeqMax: f.nSeqMax, pooling: f.pooling })
      progress?.(1)
      return model
    } catch (err) {
      m.dispose()
      throw toHearthError(err)
    }
  }

  tokenize(text: string, addSpecial = true): Int32Array {
    return this.#native.tokenize(text, addSpecial, false)
  }

  /** The longest input in tokens (the embedding context), as Model.embeddingContextSize. */
  get embeddingContextSize(): number {
    return this.context.nCtx
  }

  /** A text as tokens off the JS thread, refusing text longer than `maxTokens` can hold (see Model.tokenizeText). */
  async tokenizeText(text: string, options: { maxTokens: number; param: string }): Promise<Int32Array> {
    const bytes = Buffer.byteLength(text)
    if (bytes > options.maxTokens * this.#maxPieceBytes) {
      throw new HearthError('context_length_exceeded', `${options.param} has ${bytes} bytes, more than ${options.maxTokens} tokens can hold`, options.param)
    }
    return this.#native.tokenizeAsync(text, true, false)
  }

  /** Inputs (a text, token ids, or a list of either) as token arrays; `param` names the input in errors. */
  tokenizePrompts(raw: PromptInput, param = 'input', maxTokens = this.context.nCtx): Promise<Int32Array[]> {
    return promptTokenLists(raw, (text) => this.tokenizeText(text, { maxTokens, param }), this.facts.nVocab, param)
  }

  /** Pooled, L2-normalised embeddings, one per input (queued as Model.embed queues them). */
  async embed(inputs: (string | Int32Array)[], options: { signal?: AbortSignal } = {}): Promise<EmbeddingResult> {
    if (this.#disposed) throw new HearthError('model_disposed', 'the model was disposed')
    const maxTokens = this.context.nCtx
    const tokens = await Promise.all(inputs.map((x, i) => (typeof x === 'string' ? this.tokenizeText(x, { maxTokens, param: `input[${i}]` }) : x)))
    const vectors = await this.#queue.submit(tokens, options.signal)
    return { vectors, promptTokens: tokens.reduce((n, t) => n + t.length, 0) }
  }

  embeddingStats(): EmbeddingQueueStats {
    return this.#queue.stats()
  }

  /** Bytes as llama.cpp reports them: the weights, the embedding context and its compute buffers. */
  memoryUse(): Readonly<NativeMemoryUse> {
    return this.#memory
  }

  /** It has embedding requests admitted and not yet settled. */
  busy(): boolean {
    return this.#queue.stats().requests > 0
  }

  /** Resolves when no embedding request is admitted (it may be busy again by the time its caller runs). */
  idle(): Promise<void> {
    return this.#queue.idle()
  }

  /** Waits for admitted requests to settle, then frees the context and the weights. */
  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    await this.#queue.close()
    this.#native.dispose()
    native.trimHeap() // as Model.dispose: freed buffers go back to the system
  }
}

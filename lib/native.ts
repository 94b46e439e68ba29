// The one place that loads hearth.node and types it. Prebuilt addons (prebuilds/) come first, then the
// local source build (build/Release); when none loads, the error lists every path tried and why.
// HEARTH_ADDON=path loads exactly that file instead (the sanitizer build of scripts/test-asan.mjs).
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Options for loading weights (native `loadModel`). */
export interface NativeModelOptions {
  /** layers to offload to the GPU; -1 = all (only meaningful in a GPU build) */
  gpuLayers?: number
  useExtraBuffers?: boolean
}

export interface NativeModelFacts {
  architecture: string
  name: string
  description: string
  nParams: number
  sizeBytes: number
  nCtxTrain: number
  nEmbd: number
  nLayer: number
  nHead: number
  nHeadKv: number
  nVocab: number
  /** -1 when the model has no such token */
  bos: number
  eos: number
  eot: number
  /** fill-in-the-middle tokens: prefix, suffix, middle (-1 when the vocabulary has none) */
  fimPre: number
  fimSuf: number
  fimMid: number
  addBos: boolean
  addEos: boolean
  hasEncoder: boolean
  isRecurrent: boolean
  chatTemplate: string | null
  /** every scalar GGUF metadata key, as text */
  metadata: Record<string, string>
}

export interface NativeModel {
  facts(): NativeModelFacts
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array
  /** the same on the libuv pool: a request's text (tokenizers are superlinear on some inputs) */
  tokenizeAsync(text: string, addSpecial: boolean, parseSpecial: boolean): Promise<Int32Array>
  detokenize(tokens: Int32Array, removeSpecial: boolean, unparseSpecial: boolean): string
  /** every token's bytes: token t is bytes[offsets[t] .. offsets[t + 1]) */
  tokenPieces(special: boolean): { bytes: Uint8Array; offsets: Uint32Array }
  eogTokens(): Int32Array
  /** throws `invalid_grammar` (with llama.cpp's reason) when the GBNF does not parse */
  checkGrammar(gbnf: string): void
  /** throws `model_in_use` while contexts made from it are alive */
  dispose(): void
}

/** Every field is required: hearth's defaults live in lib/model.ts, never in the addon. */
export interface NativeContextOptions {
  nCtx: number
  nSeqMax: number
  nBatch: number
  nUbatch: number
  threads: number
  threadsBatch: number
  /** one pool of cells for all sequences, or one stream of nCtx / nSeqMax cells per sequence */
  kvUnified: boolean
  flashAttention: 'auto' | 'on' | 'off'
  /** KV cache element types; a quantized V cache needs flash attention */
  typeK: KvCacheType
  typeV: KvCacheType
}

/** The KV cache types offered (--cache-type-k/-v). */
export const KV_CACHE_TYPES = ['f16', 'q8_0', 'q4_0'] as const
export type KvCacheType = (typeof KV_CACHE_TYPES)[number]

export interface NativeContextFacts {
  nCtx: number
  nCtxSeq: number
  nBatch: number
  nUbatch: number
  nSeqMax: number
  nThreads: number
  nThreadsBatch: number
  /** false: one KV stream of nCtxSeq cells per sequence */
  kvUnified: boolean
}

/** Sampling for one sequence, already validated by lib/params.ts. */
export interface NativeSamplerParams {
  temperature: number
  topK: number
  topP: number
  minP: number
  repeatPenalty: number
  repeatLastN: number
  presencePenalty: number
  frequencyPenalty: number
  seed: number
  logprobs: boolean
  topLogprobs: number
  /** a user's GBNF, applied from the first token (not together with a chat grammar) */
  grammar?: string
  /** [token, bias, token, bias, ...] */
  logitBias?: Float32Array
  /** The output follows a chat template's format: pass the ChatTemplates.apply() result (these fields of it).
   * Its grammar (if any) is fed `generationPrompt` first, since it starts with it (unless lazy: then it waits
   * for a trigger; a trigger word that is one special token becomes a token trigger, and must be a preserved
   * token). With thinking tags, llama.cpp's reasoning-budget sampler watches the thinking block: a lazy grammar
   * does not fire inside it, and `reasoningBudget` bounds it. Refused (invalid_grammar) beside `grammar`. */
  chat?: Pick<NativeChatApplied, 'grammar' | 'grammarLazy' | 'grammarTriggers' | 'preservedTokens' | 'generationPrompt' | 'thinkingStartTag' | 'thinkingEndTags'> & {
    /** the generation prompt as the prompt's own last tokens: fed to a (not lazy) chat grammar instead of llama.cpp's
     * tokenization of generationPrompt alone, which for SentencePiece vocabularies adds a word-start space */
    prefillTokens?: Int32Array
  }
  /** tokens allowed inside the thinking block before its end tag is forced; -1 (default) = unlimited. Needs
   * `chat` with thinking tags. */
  reasoningBudget?: number
  /** text forced before the end tag when the budget runs out (default none) */
  reasoningBudgetMessage?: string
}

/** Per sampled entry of a step: how sampling went for that sequence (see `NativeStepResult.status`). */
export const SampleStatus = {
  /** the token was sampled and accepted into the sequence's sampler chain */
  ok: 0,
  /** the constraints (grammar, logit bias, ignore_eos) leave no candidate; nothing was accepted */
  none: 1,
  /** llama.cpp failed while sampling or accepting; `errors[k]` says why */
  error: 2,
} as const
export type SampleStatus = (typeof SampleStatus)[keyof typeof SampleStatus]

/**
 * One step's samples. Sampling fails per sequence, never for the batch: entry k with status 1 (none) means the
 * sequence cannot continue (e.g. its grammar is complete and only end-of-generation is allowed, which ignore_eos
 * bans): end it normally, finish "stop". Status 2 (error) fails that sequence only; its sampler chain's state is
 * unspecified, so set a new sampler before the slot is used again. For both, tokens[k] is -1 and nothing was
 * accepted. Only a failure of llama_decode itself rejects the whole step.
 */
export interface NativeStepResult {
  /** one sampled token per entry of sampleAt, in the same order; -1 where status is not 0 */
  tokens: Int32Array
  /** per entry: 0 ok, 1 nothing allowed, 2 error (SampleStatus) */
  status: Int32Array
  /** per entry: why sampling failed where status is 2, '' otherwise */
  errors: string[]
  /** log-probability of each sampled token (NaN where not requested) */
  logprobs: Float32Array
  /** alternatives per sampled token: topIds/topLogprobs hold nTop entries per token */
  nTop: number
  topIds: Int32Array
  topLogprobs: Float32Array
  decodeUs: number
  sampleUs: number
}

/** Bytes a context holds as llama.cpp counts them (llama_get_memory_breakdown), summed over buffer types. */
export interface NativeMemoryUse {
  /** the weights: the same for every context of one model, so count them once per model */
  model: number
  /** the KV cache (or recurrent state) */
  context: number
  /** compute buffers */
  compute: number
  /** the part of the three in host memory (all of it in a CPU build) */
  host: number
  /** the part of the weights in host memory */
  hostModel: number
}

export interface NativeContext {
  facts(): NativeContextFacts
  /** between steps only (context_busy otherwise) */
  memory(): NativeMemoryUse
  /** Threads for the next steps, between steps only; each clamped to 1 .. the count the context was created
   * with. Returns the counts in use: [threads, threadsBatch]. */
  setThreads(threads: number, threadsBatch: number): [number, number]
  setSampler(seq: number, params: NativeSamplerParams | null, promptTokens?: Int32Array): void
  seqRemove(seq: number, p0?: number, p1?: number): boolean
  /** dst gets src's cells in [p0, p1): shared in a unified cache; across KV streams a prefix (p0 <= 0) is copied
   * at once and replaces dst's cells (throws state_restore_failed, dst then empty, when its stream has no room) */
  seqCopy(src: number, dst: number, p0?: number, p1?: number): void
  seqRange(seq: number): [number, number]
  /** A sequence's cells saved to host memory, on the decode thread (busy until it settles, like a step).
   * Rejects with state_save_failed. */
  seqSave(seq: number): Promise<NativeSeqState>
  /** Replaces a sequence's cells with a state saved from this context and keeps positions [0, keep) (all when keep
   * is omitted or negative); resolves with the sequence's length. On the decode thread, busy until it settles.
   * Rejects with state_restore_failed (the sequence is then empty). */
  seqRestore(seq: number, state: NativeSeqState, keep?: number): Promise<number>
  clear(): void
  /** One decode step for the whole batch, sampling at most one position per sequence; every other method throws
   * `context_busy` until it settles. */
  step(tokens: Int32Array, positions: Int32Array, seqIds: Int32Array, sampleAt: Int32Array, media?: NativeMediaInput[]): Promise<NativeStepResult>
  dispose(): void
}

/** A saved sequence (Context.seqSave): its bytes are native memory, freed by dispose() (or, late, by the GC). */
export interface NativeSeqState {
  readonly byteLength: number
  dispose(): void
}

/** An opaque handle owned by the addon (freed when collected); only the method that made it can read it. */
declare const handleBrand: unique symbol
export type NativeHandle<Kind extends string> = { readonly [handleBrand]: Kind }

/** Media embeddings a step decodes into sequence `seq` from position `pos`, before that step's tokens. */
export interface NativeMediaInput {
  seq: number
  pos: number
  chunk: NativeHandle<'media-chunk'>
  /** nTokens x the model's embedding size, from Projector.encode() */
  embeddings: Float32Array
}

export interface NativeProjectorOptions {
  /** CPU threads of the encoder */
  threads: number
  /** encode a blank image once at load */
  warmup: boolean
  /** the text in a prompt that stands for one media item */
  marker: string
  /** most embeddings per image for projectors with dynamic resolution; -1 the projector's own */
  maxImageTokens: number
  /** run the encoder on the GPU in a GPU build */
  gpu: boolean
}

export interface NativeProjectorFacts {
  vision: boolean
  audio: boolean
  /** Hz, -1 without an audio encoder */
  audioSampleRate: number
  marker: string
  /** the text model's input embedding size (what each media embedding has) */
  nEmbd: number
  /** positions are M-RoPE (several per embedding) */
  mrope: boolean
  /** images attend to themselves both ways (Gemma 3) */
  nonCausal: boolean
}

/** A decoded media file (RGB pixels or PCM samples). */
export interface NativeBitmap {
  /** SHA-256 of the file's bytes, hex */
  id: string
  audio: boolean
  nx: number
  ny: number
  handle: NativeHandle<'bitmap'>
}

/** One media item of a tokenized prompt: nTokens embeddings over nPos positions. */
export interface NativeMediaChunk {
  type: 'image' | 'audio'
  nTokens: number
  nPos: number
  /** the bitmap's id */
  id: string
  handle: NativeHandle<'media-chunk'>
}

/**
 * A multimodal projector (mmproj) for one model; decode, tokenize and encode run on worker threads, encodes of
 * one projector one at a time. Methods throw `projector_disposed` after dispose().
 */
export interface NativeProjector {
  facts(): NativeProjectorFacts
  /** file bytes (PNG, JPEG, GIF, BMP; WAV, MP3, FLAC with an audio encoder) to a bitmap; rejects with
   * invalid_media when they are none of these, or an image has more than maxPixels pixels */
  decode(bytes: Uint8Array, maxPixels: number): Promise<NativeBitmap>
  /** a prompt with one marker per bitmap to token runs and media chunks, in order (no BOS added) */
  tokenize(text: string, bitmaps: NativeHandle<'bitmap'>[], parseSpecial: boolean): Promise<(Int32Array | NativeMediaChunk)[]>
  /** rejects with media_failed */
  encode(chunk: NativeHandle<'media-chunk'>): Promise<{ embeddings: Float32Array; encodeUs: number }>
  dispose(): void
}

/** nCtx, nSeqMax and threads are required: their defaults live in lib/model.ts. */
export interface NativeEmbedderOptions {
  nCtx: number
  nSeqMax: number
  threads: number
  pooling?: 'mean' | 'cls' | 'last'
}

export interface NativeEmbedder {
  facts(): { nCtx: number; nSeqMax: number; nEmbd: number; pooling: string }
  /** input i is tokens[offsets[i] .. offsets[i + 1]); resolves to nInputs * nEmbd unit vectors */
  embed(tokens: Int32Array, offsets: Int32Array): Promise<Float32Array>
  /** not while an embed() is in flight (context_busy) */
  memory(): NativeMemoryUse
  dispose(): void
}

/** A message as llama.cpp's chat layer takes it (common_chat_msg). Content is a string or text parts. */
export interface NativeChatMessage {
  role: string
  content?: string | { type: 'text'; text: string }[] | null
  reasoningContent?: string
  /** `arguments` is the JSON text the model wrote; `id` as the client knows it */
  toolCalls?: { id?: string; name: string; arguments: string }[]
  toolCallId?: string
  /** the tool's name on a `tool` message */
  toolName?: string
}

export interface NativeChatTool {
  name: string
  description?: string
  /** the JSON schema of the arguments, as JSON text; absent = no arguments */
  parameters?: string
}

/** What ChatTemplates.apply() renders. Defaults as shown; lib/ bounds sizes and nesting before calling. */
export interface NativeChatInput {
  messages: NativeChatMessage[]
  tools?: NativeChatTool[]
  /** 'auto' (default): a lazy grammar starts at the template's tool-call marker (when the template has one);
   * 'required': the grammar applies from the first token and cannot end before a call, though in this llama.cpp
   * it lets text come before the call marker; 'none': tools are described but no grammar is made */
  toolChoice?: 'auto' | 'required' | 'none'
  /** default false (the library's default; llama-server defaults to the template's capability) */
  parallelToolCalls?: boolean
  /** a JSON schema (as JSON text) the answer must follow: a grammar (not lazy) that includes the template's
   * optional thinking block before the answer */
  jsonSchema?: string
  /** 'auto' (default) extracts reasoning into reasoningContent where the template has it; 'none' leaves it in
   * the content. 'deepseek' and 'deepseek-legacy' are llama-server's names, treated as 'auto' by the parsers. */
  reasoningFormat?: 'none' | 'auto' | 'deepseek' | 'deepseek-legacy'
  /** default true; templates that can think are told to (enable_thinking) */
  enableThinking?: boolean
  /** extra template variables, each value JSON text: { reasoning_effort: '"high"' } for gpt-oss */
  chatTemplateKwargs?: Record<string, string>
  /** default true; false (or absent) when continuing */
  addGenerationPrompt?: boolean
  /** continue the last (assistant) message instead of starting a new one: 'auto' picks reasoning or content */
  continueFinalMessage?: 'none' | 'auto' | 'content' | 'reasoning'
}

export interface NativeGrammarTrigger {
  /** token: `token` starts the grammar; word: the text `value` does; pattern: the regex `value` matches
   * (a group's start is where the grammar starts); patternFull: the regex must match the whole output */
  type: 'token' | 'word' | 'pattern' | 'patternFull'
  value: string
  /** -1 unless type is 'token' */
  token: number
}

/** A parser's output so far (common_chat_msg). Tool call ids are '' unless the model wrote one. */
export interface NativeChatMessageOut {
  content: string
  reasoningContent: string
  toolCalls: { id: string; name: string; arguments: string }[]
}

/** One change (common_chat_msg_diff): a reasoning delta, a content delta, or a tool call's delta. */
export interface NativeChatDiff {
  reasoningDelta: string
  contentDelta: string
  /** -1 unless this diff is about a tool call */
  toolCallIndex: number
  /** set when the call is new or its id/name changed, '' otherwise */
  toolCallId: string
  toolCallName: string
  toolCallArgumentsDelta: string
}

/** One generation's output through the template's parser. JS thread; parses synchronously, the whole output
 * each push (push once per step). Push whole code points: a lone surrogate becomes U+FFFD. */
export interface NativeChatParser {
  /** Appends model output; returns the diffs since the last push. Partial text never fails (what cannot be
   * placed yet waits). On the final push a strict parse that fails sets `error` (llama.cpp's reason) and the
   * message keeps what was recognised (or becomes the whole output as content when nothing was); nothing
   * streamed is taken back. Throws `chat_parser_finished` after the final push. */
  push(text: string, isFinal: boolean): { diffs: NativeChatDiff[]; error: string }
  message(): NativeChatMessageOut
}

/** What one apply() decided about the output; makes parsers (one per generated choice). */
export interface NativeChatParserSpec {
  /** echo: a continued message's prefilled part comes out in the first diff (default false, as llama-server) */
  createParser(options?: { echo?: boolean }): NativeChatParser
}

export interface NativeChatApplied {
  prompt: string
  /** the library's name of the output format, e.g. 'peg-native', 'Content-only' */
  format: string
  /** GBNF to sample with ('' = none): a json_schema answer or the tool calls. Not a user grammar: prefill it
   * with generationPrompt (NativeSamplerParams.chat does) */
  grammar: string
  /** the grammar applies only once a trigger fires */
  grammarLazy: boolean
  grammarTriggers: NativeGrammarTrigger[]
  /** special tokens the output must keep as text (tool-call markers): render these tokens, not skip them */
  preservedTokens: string[]
  /** stop strings the template implies, beside the request's */
  additionalStops: string[]
  /** the text the template already put at the start of the answer (e.g. '<think>\n'): the parser expects
   * it before the output, and a grammar prefill feeds it to the grammar */
  generationPrompt: string
  supportsThinking: boolean
  thinkingStartTag: string
  thinkingEndTags: string[]
  parser: NativeChatParserSpec
}

export interface NativeChatTemplates {
  /** the Jinja source in use */
  readonly source: string
  /** the model's separate tool-use template, when it has one (used whenever tools are given) */
  readonly toolUseSource: string | null
  readonly origin: 'model' | 'override' | 'chatml'
  readonly modelHasTemplate: boolean
  /** the library's capability probe (supportsTools, supportsToolCalls, supportsParallelToolCalls,
   * supportsSystemRole, supportsReasoningEffort, supportsPreserveReasoning, supportsStringContent,
   * supportsTypedContent, supportsObjectArguments) plus supportsThinking */
  readonly caps: Readonly<Record<string, boolean>>
  /** Renders on a worker thread. Rejects with invalid_parameter / invalid_json_schema (the field named) or
   * chat_template_error. */
  apply(input: NativeChatInput): Promise<NativeChatApplied>
}

export interface NativeAddon {
  loadModel(path: string, options: NativeModelOptions, onProgress?: (progress: number) => void): Promise<NativeModel>
  createContext(model: NativeModel, options: NativeContextOptions): Promise<NativeContext>
  createEmbedder(model: NativeModel, options: NativeEmbedderOptions): Promise<NativeEmbedder>
  /** rejects with projector_load_failed (not a projector, or its embedding size is not the model's) */
  loadProjector(model: NativeModel, path: string, options: NativeProjectorOptions): Promise<NativeProjector>
  /** The model's chat template (or `override`: Jinja source, or 'chatml') through llama.cpp's chat layer;
   * rejects with invalid_chat_template when it does not parse. */
  createChatTemplates(model: NativeModel, override?: string): Promise<NativeChatTemplates>
  /** JSON schema text to GBNF (llama.cpp's converter); throws invalid_json_schema */
  jsonSchemaToGrammar(schema: string): string
  quantize(input: string, output: string, type: 'f16' | 'q8_0' | 'q4_0' | 'q4_k_m', threads?: number): Promise<void>
  /** 0 debug, 1 info, 2 warn, 3 error, 4 none (default) */
  setLogLevel(level: number): void
  systemInfo(): { llama: string; gpuOffload: boolean; mmap: boolean; maxParallelSequences: number }
  /** hands the allocator's free memory back to the system (glibc malloc_trim); false where it cannot */
  trimHeap(): boolean
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url)
  const tried: string[] = []
  const candidates: string[] = []
  const override = process.env.HEARTH_ADDON
  if (override) {
    candidates.push(resolve(override))
  } else {
    try {
      candidates.push(require('node-gyp-build').resolve(packageRoot) as string)
    } catch (err) {
      tried.push(`prebuilds/ and build/: ${(err as Error).message.split('\n')[0]}`)
    }
    const local = join(packageRoot, 'build', 'Release', 'hearth.node')
    if (!candidates.includes(local) && existsSync(local)) candidates.push(local)
  }
  for (const path of candidates) {
    try {
      const addon = require(path) as NativeAddon
      const level = process.env.HEARTH_LOG_LEVEL
      if (level !== undefined) addon.setLogLevel(Number(level))
      return addon
    } catch (err) {
      tried.push(`${path}: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  throw new Error(`hearth: no native addon loads on ${process.platform}-${process.arch} (run \`npm install\` to build it). Tried:\n  ${tried.join('\n  ')}`)
}

export const native: NativeAddon = loadAddon()

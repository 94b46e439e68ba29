// Media (images, audio) in prompts, through a model's projector (native Projector: llama.cpp's mtmd).
//
// A chat with media renders to text with one marker per media item; the projector tokenizes that text into token
// runs and media chunks, and the prompt the scheduler sees is one Int32Array in which each media chunk occupies
// its nTokens positions with pseudo-tokens: negative numbers (never a vocabulary id) derived from the media's
// SHA-256. The prompt cache compares prompts token by token, so a conversation that sends the same image again
// shares the cells of its first turn, and a different image differs at its first pseudo-token. The scheduler
// decodes a span's embeddings (MediaSpan.embeddings) in place of its pseudo-tokens; the embeddings are encoded on
// a worker thread only when the span's cells are not already cached, while other sequences keep decoding.
import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { HearthError } from './errors.js'
import { isProjectorName, pairProjector } from './model-scan.js'
import type { NativeBitmap, NativeHandle, NativeMediaChunk, NativeModel, NativeProjector, NativeProjectorFacts } from './native.js'
import { native } from './native.js'

/** Formats the in-process decoder reads (stb_image), by their first bytes. */
export const IMAGE_FORMATS = ['PNG', 'JPEG', 'GIF', 'BMP'] as const
export type ImageFormat = (typeof IMAGE_FORMATS)[number]

/** What the first bytes of a file say it is; null when nothing known. */
export function sniffMedia(b: Uint8Array): ImageFormat | 'WebP' | 'WAV' | 'MP3' | 'FLAC' | null {
  const ascii = (at: number, s: string) => b.length >= at + s.length && [...s].every((c, i) => b[at + i] === c.charCodeAt(0))
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 'PNG\r\n\x1a\n')) return 'PNG'
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG'
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'GIF'
  if (ascii(0, 'BM') && b.length >= 26) return 'BMP'
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'WebP'
  if (ascii(0, 'RIFF') && ascii(8, 'WAVE')) return 'WAV'
  if (ascii(0, 'ID3') || (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0)) return 'MP3'
  if (ascii(0, 'fLaC')) return 'FLAC'
  return null
}

/**
 * A JPEG must end with its end-of-image marker (trailing zero padding allowed): the decoder fills a cut-off
 * JPEG with grey instead of failing, and a truncated upload must be refused, not read as another picture.
 */
export function jpegComplete(b: Uint8Array): boolean {
  let end = b.length
  while (end > 2 && b[end - 1] === 0) end--
  return end >= 4 && b[end - 2] === 0xff && b[end - 1] === 0xd9
}

/** One media chunk of a prompt: `length` positions from `start`, filled by decoding its embeddings. */
export class MediaSpan {
  readonly start: number
  readonly length: number
  readonly chunk: NativeHandle<'media-chunk'>
  readonly type: 'image' | 'audio'
  readonly #projector: MediaProjector
  #embeddings: Float32Array | null = null
  #encoding: Promise<void> | null = null
  #error: HearthError | null = null

  constructor(projector: MediaProjector, start: number, c: NativeMediaChunk) {
    this.#projector = projector
    this.start = start
    this.length = c.nTokens
    this.chunk = c.handle
    this.type = c.type
  }

  get end(): number {
    return this.start + this.length
  }

  /** the embeddings, once encoded (null before, and after release()) */
  get embeddings(): Float32Array | null {
    return this.#embeddings
  }

  /** why encoding failed, if it did */
  get error(): HearthError | null {
    return this.#error
  }

  /** Starts encoding (once); `done` is called when the embeddings or the error are there. */
  encode(done: () => void): void {
    if (this.#encoding || this.#embeddings) return
    this.#encoding = this.#projector.encode(this.chunk).then(
      (e) => {
        this.#embeddings = e
        done()
      },
      (err: unknown) => {
        this.#error = err instanceof HearthError ? err : new HearthError('media_failed', String((err as Error)?.message ?? err))
        done()
      },
    )
  }

  /**
   * The embeddings were decoded into the cells: their memory can go. Another sequence of the same prompt that
   * cannot take those cells (n > 1 without the prompt cache) encodes it again.
   */
  release(): void {
    this.#embeddings = null
    this.#encoding = null
  }
}

/** A tokenized prompt with media: the tokens (pseudo-tokens at media positions) and the media spans in order. */
export interface MediaPrompt {
  tokens: Int32Array
  spans: MediaSpan[]
}

/** `id`'s pseudo-tokens: n negative int32s from the first 32 bits of its hex digest (random when there is none). */
export function pseudoTokens(id: string, n: number): Int32Array {
  const h = /^[0-9a-f]{8}/i.test(id) ? parseInt(id.slice(0, 8), 16) >>> 0 : (Math.random() * 2 ** 32) >>> 0
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = -1 - ((h ^ Math.imul(i + 1, 0x9e3779b1)) >>> 1)
  return out
}

export interface ProjectorOptions {
  /** CPU threads of the encoder */
  threads: number
  /** run the encoder on the GPU (GPU builds); default true */
  gpu?: boolean
  /** largest image in pixels (width x height), checked from its header before it is decoded; default 2^25 */
  maxPixels?: number
}

/**
 * A loaded projector. Encodes run one at a time (the native projector keeps its output in one buffer): they queue
 * here rather than each holding a libuv worker thread while it waits.
 */
export class MediaProjector {
  readonly facts: NativeProjectorFacts
  readonly #native: NativeProjector
  readonly #maxPixels: number
  #encodeQueue: Promise<unknown> = Promise.resolve()

  private constructor(p: NativeProjector, maxPixels: number) {
    this.#native = p
    this.facts = p.facts()
    this.#maxPixels = maxPixels
  }

  /** Loads `path` for `model`; throws projector_load_failed (also for M-RoPE and non-causal projectors). */
  static async load(model: NativeModel, path: string, options: ProjectorOptions): Promise<MediaProjector> {
    // a marker no user text contains by chance: a marker in a message would be taken for a media item
    const marker = `<__media_${randomBytes(9).toString('base64url')}__>`
    const p = await native.loadProjector(model, path, { threads: options.threads, warmup: true, marker, maxImageTokens: -1, gpu: options.gpu ?? true })
    const projector = new MediaProjector(p, options.maxPixels ?? 2 ** 25)
    if (projector.facts.mrope) {
      p.dispose()
      // the scheduler gives every prompt token its own position; M-RoPE media (Qwen2-VL and later) take fewer
      throw new HearthError('projector_load_failed', `${path} uses M-RoPE positions (Qwen2-VL family), which hearth does not support yet`)
    }
    if (projector.facts.nonCausal) {
      p.dispose()
      // its embeddings must be decoded with non-causal attention, which the shared decode step does not switch to
      throw new HearthError('projector_load_failed', `${path} needs non-causal attention over its images (Gemma 3 family), which hearth does not support yet`)
    }
    return projector
  }

  get marker(): string {
    return this.facts.marker
  }

  /** Decodes a media file; invalid_media (400, `param`) when it cannot be read. */
  async decode(bytes: Uint8Array, param: string): Promise<NativeBitmap> {
    try {
      return await this.#native.decode(bytes, this.#maxPixels)
    } catch (err) {
      throw new HearthError('invalid_media', `${param}: ${(err as Error).message}`, param)
    }
  }

  /**
   * The prompt `text` (one marker per bitmap, in order) as tokens and spans; `bos` is prepended when not -1.
   * Throws invalid_media.
   */
  async tokenize(text: string, bitmaps: NativeBitmap[], bos: number): Promise<MediaPrompt> {
    let parts: (Int32Array | NativeMediaChunk)[]
    try {
      parts = await this.#native.tokenize(text, bitmaps.map((b) => b.handle), true)
    } catch (err) {
      throw new HearthError('invalid_media', (err as Error).message)
    }
    const total = (bos >= 0 ? 1 : 0) + parts.reduce((n, p) => n + (p instanceof Int32Array ? p.length : p.nTokens), 0)
    const tokens = new Int32Array(total)
    const spans: MediaSpan[] = []
    let at = 0
    if (bos >= 0) tokens[at++] = bos
    for (const p of parts) {
      if (p instanceof Int32Array) {
        tokens.set(p, at)
        at += p.length
        continue
      }
      tokens.set(pseudoTokens(p.id, p.nTokens), at)
      spans.push(new MediaSpan(this, at, p))
      at += p.nTokens
    }
    return { tokens, spans }
  }

  encode(chunk: NativeHandle<'media-chunk'>): Promise<Float32Array> {
    const run = this.#encodeQueue.then(() => this.#native.encode(chunk))
    this.#encodeQueue = run.catch(() => undefined)
    return run.then(
      (r) => r.embeddings,
      (err: unknown) => {
        throw new HearthError('media_failed', `encoding the media failed: ${(err as Error).message}`)
      },
    )
  }

  dispose(): void {
    this.#native.dispose()
  }
}

/**
 * The projector that goes with the model at `modelPath` when none is named, as LM Studio pairs them: an
 * `mmproj-*.gguf` file in the model's folder, chosen by the models folder's rule (lib/model-scan.ts
 * pairProjector); null when there is none.
 */
export async function pairedProjector(modelPath: string): Promise<string | null> {
  let names: string[]
  try {
    names = await readdir(dirname(modelPath))
  } catch {
    return null
  }
  const projectors = names.filter((n) => /\.gguf$/i.test(n) && isProjectorName(n) && n !== basename(modelPath)).map((n) => join(dirname(modelPath), n))
  return pairProjector(modelPath, projectors)
}

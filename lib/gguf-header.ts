// Reads what a models list needs from a GGUF file without loading it: the scalar metadata, the length of each
// array (a vocabulary's 150,000 strings are skipped, not kept), and the tensor table (element counts and types).
// The files come from folders anyone can write into, so every count and length is bounded and a file that breaks
// a bound, ends early or is not GGUF is an error naming the file, never a hang or a huge allocation.
import { open, type FileHandle } from 'node:fs/promises'

export type GgufScalar = number | bigint | boolean | string

export interface GgufTensor {
  name: string
  /** ggml_type id */
  type: number
  /** elements */
  count: number
}

export interface GgufHeader {
  version: number
  /** every scalar key with its value; strings longer than MAX_KEPT_STRING are cut */
  metadata: Map<string, GgufScalar>
  /** every array key with its length */
  arrays: Map<string, number>
  tensors: GgufTensor[]
  /** bytes before the tensor data (header, metadata, tensor table, alignment) */
  headerBytes: number
}

// gguf_type (ggml/include/gguf.h): byte sizes of the fixed-size value types
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }
const STRING = 8
const ARRAY = 9
const MAGIC = 0x46554747 // "GGUF", little-endian

/** Bounds far above any real model (Qwen's vocabulary is ~152k strings, a chat template a few tens of KB). */
const LIMITS = { keys: 100_000, tensors: 1_000_000, dims: 8, stringBytes: 64 * 2 ** 20, arrayItems: 64 * 2 ** 20 }
/** Strings kept in `metadata` are cut to this (a chat template stays whole; a license text need not). */
const MAX_KEPT_STRING = 1 * 2 ** 20

const CHUNK = 256 * 1024

class GgufError extends Error {}

/** Sequential reads through a file handle, a chunk at a time. */
class Reader {
  readonly #file: FileHandle
  #buf = Buffer.alloc(0)
  #pos = 0
  #filePos = 0
  #eof = false

  constructor(file: FileHandle) {
    this.#file = file
  }

  get position(): number {
    return this.#filePos - (this.#buf.length - this.#pos)
  }

  async #need(n: number): Promise<void> {
    while (this.#buf.length - this.#pos < n) {
      if (this.#eof) throw new GgufError('the file ends inside its header')
      const keep = this.#buf.subarray(this.#pos)
      const chunk = Buffer.allocUnsafe(Math.max(CHUNK, n - keep.length))
      const { bytesRead } = await this.#file.read(chunk, 0, chunk.length, this.#filePos)
      if (bytesRead === 0) this.#eof = true
      this.#filePos += bytesRead
      this.#buf = Buffer.concat([keep, chunk.subarray(0, bytesRead)])
      this.#pos = 0
    }
  }

  /** Skips `n` bytes without keeping them. */
  async skip(n: number): Promise<void> {
    const inBuf = this.#buf.length - this.#pos
    if (n <= inBuf) {
      this.#pos += n
      return
    }
    this.#filePos += n - inBuf
    this.#buf = Buffer.alloc(0)
    this.#pos = 0
  }

  async u32(): Promise<number> {
    await this.#need(4)
    const v = this.#buf.readUInt32LE(this.#pos)
    this.#pos += 4
    return v
  }

  /** a u64 count or length, refused past `max` */
  async count(max: number, what: string): Promise<number> {
    await this.#need(8)
    const v = this.#buf.readBigUInt64LE(this.#pos)
    this.#pos += 8
    if (v > BigInt(max)) throw new GgufError(`${what} ${v} is past the limit of ${max}`)
    return Number(v)
  }

  async string(keep: number): Promise<string> {
    const n = await this.count(LIMITS.stringBytes, 'a string length')
    const kept = Math.min(n, keep)
    await this.#need(kept)
    const s = this.#buf.toString('utf8', this.#pos, this.#pos + kept)
    this.#pos += kept
    if (n > kept) await this.skip(n - kept)
    return s
  }

  async scalar(type: number): Promise<GgufScalar> {
    if (type === STRING) return this.string(MAX_KEPT_STRING)
    const size = FIXED_SIZE[type]
    if (size === undefined) throw new GgufError(`unknown value type ${type}`)
    await this.#need(size)
    const b = this.#buf
    const p = this.#pos
    this.#pos += size
    switch (type) {
      case 0: return b.readUInt8(p)
      case 1: return b.readInt8(p)
      case 2: return b.readUInt16LE(p)
      case 3: return b.readInt16LE(p)
      case 4: return b.readUInt32LE(p)
      case 5: return b.readInt32LE(p)
      case 6: return b.readFloatLE(p)
      case 7: return b.readUInt8(p) !== 0
      case 10: return b.readBigUInt64LE(p)
      case 11: return b.readBigInt64LE(p)
      default: return b.readDoubleLE(p)
    }
  }

  async skipArray(type: number, n: number): Promise<void> {
    if (type === STRING) {
      for (let i = 0; i < n; i++) {
        const len = await this.count(LIMITS.stringBytes, 'a string length')
        await this.skip(len)
      }
      return
    }
    const size = FIXED_SIZE[type]
    if (size === undefined) throw new GgufError(`unknown array item type ${type}`)
    await this.skip(size * n)
  }
}

/** The header of the GGUF file at `path`. Throws an Error whose message names the file and what is wrong. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let file: FileHandle
  try {
    file = await open(path, 'r')
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    const r = new Reader(file)
    if ((await r.u32()) !== MAGIC) throw new GgufError('not a GGUF file (no GGUF magic)')
    const version = await r.u32()
    if (version < 2 || version > 3) throw new GgufError(`GGUF version ${version} is not supported`)
    const nTensors = await r.count(LIMITS.tensors, 'the tensor count')
    const nKeys = await r.count(LIMITS.keys, 'the metadata key count')
    const metadata = new Map<string, GgufScalar>()
    const arrays = new Map<string, number>()
    for (let i = 0; i < nKeys; i++) {
      const key = await r.string(4096)
      const type = await r.u32()
      if (type === ARRAY) {
        const itemType = await r.u32()
        const n = await r.count(LIMITS.arrayItems, `the length of ${key}`)
        await r.skipArray(itemType, n)
        arrays.set(key, n)
      } else {
        metadata.set(key, await r.scalar(type))
      }
    }
    const tensors: GgufTensor[] = []
    for (let i = 0; i < nTensors; i++) {
      const name = await r.string(4096)
      const nDims = await r.u32()
      if (nDims > LIMITS.dims) throw new GgufError(`tensor ${name} has ${nDims} dimensions`)
      let count = 1
      for (let d = 0; d < nDims; d++) count *= await r.count(2 ** 40, `a dimension of ${name}`)
      const type = await r.u32()
      await r.count(Number.MAX_SAFE_INTEGER, `the offset of ${name}`)
      tensors.push({ name, type, count })
    }
    const alignment = Number(metadata.get('general.alignment') ?? 32) || 32
    const headerBytes = Math.ceil(r.position / alignment) * alignment
    return { version, metadata, arrays, tensors, headerBytes }
  } catch (err) {
    if (err instanceof GgufError) throw new Error(`${path}: ${err.message}`)
    throw new Error(`cannot read ${path}: ${(err as Error).message}`)
  } finally {
    await file.close()
  }
}

/** A metadata value as a number (GGUF stores counts in several integer widths), or undefined. */
export function numberKey(h: GgufHeader, key: string): number | undefined {
  const v = h.metadata.get(key)
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  return undefined
}

export function stringKey(h: GgufHeader, key: string): string | undefined {
  const v = h.metadata.get(key)
  return typeof v === 'string' ? v : undefined
}

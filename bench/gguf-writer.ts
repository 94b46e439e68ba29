// A small GGUF v3 writer (format: deps/llama.cpp/ggml/include/gguf.h). The header (metadata and tensor infos)
// is built in memory; tensor data is pulled from each tensor's generator and streamed to disk, so multi-GB
// files never sit in memory. Only F32/F16 tensors are written: quantised files come from llama.cpp itself.
import { open, rename, rm } from 'node:fs/promises'

const GGUF_MAGIC = 0x46554747 // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3
export const DEFAULT_ALIGNMENT = 32

// gguf_type
const T = { i32: 5, u32: 4, f32: 6, bool: 7, string: 8, array: 9, u64: 10 } as const

export type MetadataValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'u64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'i32[]'; value: ArrayLike<number> }
  | { type: 'f32[]'; value: ArrayLike<number> }

/** Constructors for metadata values, so call sites read `u32(24)` rather than object literals. */
export const u32 = (value: number): MetadataValue => ({ type: 'u32', value })
export const i32 = (value: number): MetadataValue => ({ type: 'i32', value })
export const f32 = (value: number): MetadataValue => ({ type: 'f32', value })
export const u64 = (value: bigint): MetadataValue => ({ type: 'u64', value })
export const bool = (value: boolean): MetadataValue => ({ type: 'bool', value })
export const str = (value: string): MetadataValue => ({ type: 'string', value })
export const strArray = (value: readonly string[]): MetadataValue => ({ type: 'string[]', value })
export const i32Array = (value: ArrayLike<number>): MetadataValue => ({ type: 'i32[]', value })
export const f32Array = (value: ArrayLike<number>): MetadataValue => ({ type: 'f32[]', value })

/** ggml_type ids and element sizes of the types this writer can lay out. */
export const TENSOR_TYPES = { F32: { id: 0, bytes: 4 }, F16: { id: 1, bytes: 2 } } as const
export type TensorType = keyof typeof TENSOR_TYPES

export interface TensorSpec {
  name: string
  type: TensorType
  /** ggml order: ne[0] (the contiguous row length) first */
  shape: readonly number[]
  /** the tensor's bytes in order, in chunks of any size; called once, while the file is written */
  data: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>
}

export function tensorBytes(t: Pick<TensorSpec, 'type' | 'shape'>): number {
  return t.shape.reduce((n, d) => n * d, 1) * TENSOR_TYPES[t.type].bytes
}

const pad = (n: number, align: number): number => Math.ceil(n / align) * align

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  buf = Buffer.alloc(1 << 16)
  length = 0

  #reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n))
      this.buf.copy(bigger, 0, 0, this.length)
      this.buf = bigger
    }
    const at = this.length
    this.length += n
    return at
  }

  // reserve before touching this.buf: reserving may replace it
  u32(v: number): void {
    const at = this.#reserve(4)
    this.buf.writeUInt32LE(v, at)
  }

  i32(v: number): void {
    const at = this.#reserve(4)
    this.buf.writeInt32LE(v, at)
  }

  f32(v: number): void {
    const at = this.#reserve(4)
    this.buf.writeFloatLE(v, at)
  }

  u64(v: number | bigint): void {
    const at = this.#reserve(8)
    this.buf.writeBigUInt64LE(BigInt(v), at)
  }

  u8(v: number): void {
    const at = this.#reserve(1)
    this.buf.writeUInt8(v, at)
  }

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8')
    this.u64(bytes.length)
    const at = this.#reserve(bytes.length)
    bytes.copy(this.buf, at)
  }

  zeros(n: number): void {
    const at = this.#reserve(n)
    this.buf.fill(0, at, at + n)
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length)
  }
}

function writeValue(w: ByteWriter, v: MetadataValue): void {
  const array = (elemType: number, n: number) => {
    w.u32(T.array)
    w.u32(elemType)
    w.u64(n)
  }
  switch (v.type) {
    case 'u32': w.u32(T.u32); w.u32(v.value); break
    case 'i32': w.u32(T.i32); w.i32(v.value); break
    case 'f32': w.u32(T.f32); w.f32(v.value); break
    case 'u64': w.u32(T.u64); w.u64(v.value); break
    case 'bool': w.u32(T.bool); w.u8(v.value ? 1 : 0); break
    case 'string': w.u32(T.string); w.string(v.value); break
    case 'string[]':
      array(T.string, v.value.length)
      for (const s of v.value) w.string(s)
      break
    case 'i32[]':
      array(T.i32, v.value.length)
      for (let i = 0; i < v.value.length; i++) w.i32(v.value[i]!)
      break
    case 'f32[]':
      array(T.f32, v.value.length)
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]!)
      break
  }
}

/** Header bytes up to the start of the data section (already padded to `alignment`). */
function header(metadata: ReadonlyMap<string, MetadataValue>, tensors: readonly TensorSpec[], alignment: number): Buffer {
  const w = new ByteWriter()
  w.u32(GGUF_MAGIC)
  w.u32(GGUF_VERSION)
  w.u64(tensors.length)
  const kvs = new Map(metadata)
  // llama.cpp assumes 32 when the key is absent; write it only when it says something
  if (alignment !== DEFAULT_ALIGNMENT) kvs.set('general.alignment', u32(alignment))
  w.u64(kvs.size)
  for (const [key, value] of kvs) {
    w.string(key)
    writeValue(w, value)
  }
  // offsets are relative to the data section and each tensor starts aligned: gguf_init checks both
  let offset = 0
  for (const t of tensors) {
    w.string(t.name)
    w.u32(t.shape.length)
    for (const d of t.shape) w.u64(d)
    w.u32(TENSOR_TYPES[t.type].id)
    w.u64(offset)
    offset += pad(tensorBytes(t), alignment)
  }
  w.zeros(pad(w.length, alignment) - w.length)
  return w.bytes()
}

export interface WriteOptions {
  alignment?: number
  /** called after each tensor with the bytes written so far and the file's total */
  onProgress?: (written: number, total: number) => void
}

/**
 * Writes a GGUF file. It is written to `<path>.partial` and renamed at the end, so an interrupted run never
 * leaves a truncated file that a cache check would take for a finished one. Resolves to the file size.
 */
export async function writeGGUF(
  path: string,
  metadata: ReadonlyMap<string, MetadataValue>,
  tensors: readonly TensorSpec[],
  options: WriteOptions = {},
): Promise<number> {
  const alignment = options.alignment ?? DEFAULT_ALIGNMENT
  const names = new Set(tensors.map((t) => t.name))
  if (names.size !== tensors.length) throw new Error('duplicate tensor names')
  const head = header(metadata, tensors, alignment)
  const total = head.length + tensors.reduce((n, t) => n + pad(tensorBytes(t), alignment), 0)
  const partial = `${path}.partial`
  const file = await open(partial, 'w')
  try {
    // chunks are gathered into large writes: generators may yield small pieces
    const stage = Buffer.alloc(16 << 20)
    let staged = 0
    let written = 0
    const flush = async () => {
      let done = 0
      while (done < staged) done += (await file.write(stage, done, staged - done)).bytesWritten
      written += staged
      staged = 0
    }
    const put = async (chunk: Uint8Array) => {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(chunk.length - at, stage.length - staged)
        stage.set(chunk.subarray(at, at + n), staged)
        staged += n
        at += n
        if (staged === stage.length) await flush()
      }
    }
    await put(head)
    for (const t of tensors) {
      const expected = tensorBytes(t)
      let got = 0
      for await (const chunk of t.data()) {
        got += chunk.length
        if (got > expected) throw new Error(`tensor ${t.name}: more than its ${expected} bytes`)
        await put(chunk)
      }
      if (got !== expected) throw new Error(`tensor ${t.name}: ${got} bytes, expected ${expected}`)
      await put(new Uint8Array(pad(expected, alignment) - expected))
      options.onProgress?.(written + staged, total)
    }
    await flush()
    if (written !== total) throw new Error(`wrote ${written} bytes, expected ${total}`)
    await file.close()
    await rename(partial, path)
    return total
  } catch (err) {
    await file.close().catch(() => {})
    await rm(partial, { force: true })
    throw err
  }
}

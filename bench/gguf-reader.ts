// Reads a GGUF file's header: the metadata key/values and the tensor table, never the tensor data.
// make-model.ts takes the built-in tiny model's word pieces from it; the benchmarks take the weight bytes a
// decode step reads and the ordinary token ids for random prompts.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

export type GGUFScalar = number | bigint | boolean | string
export type GGUFValue = GGUFScalar | GGUFScalar[]

// gguf_type (ggml/include/gguf.h) -> byte size of fixed-size values
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }
const STRING = 8
const ARRAY = 9

export interface TensorInfo {
  name: string
  /** ggml_type id */
  type: number
  dims: number[]
  /** bytes from the start of the data section */
  offset: number
  /** bytes up to the next tensor (includes alignment padding, at most alignment-1 bytes) */
  bytes: number
}

export interface GGUFHeader {
  metadata: Map<string, GGUFValue>
  tensors: TensorInfo[]
  dataOffset: number
  fileBytes: number
}

/** Sequential reader over a file that pulls more bytes in as the parse needs them. */
class Cursor {
  #fd: number
  #buf = Buffer.alloc(0)
  #pos = 0
  #filePos = 0

  constructor(fd: number) {
    this.#fd = fd
  }

  /** absolute file position of the next unread byte */
  get position(): number {
    return this.#filePos - (this.#buf.length - this.#pos)
  }

  #need(n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    const keep = this.#buf.subarray(this.#pos)
    const chunk = Buffer.alloc(Math.max(n - keep.length, 1 << 20))
    const got = readSync(this.#fd, chunk, 0, chunk.length, this.#filePos)
    this.#filePos += got
    this.#buf = Buffer.concat([keep, chunk.subarray(0, got)])
    this.#pos = 0
    if (this.#buf.length < n) throw new Error('GGUF file ends inside its header')
  }

  u32(): number {
    this.#need(4)
    const v = this.#buf.readUInt32LE(this.#pos)
    this.#pos += 4
    return v
  }

  u64(): bigint {
    this.#need(8)
    const v = this.#buf.readBigUInt64LE(this.#pos)
    this.#pos += 8
    return v
  }

  /** lengths and counts: GGUF stores them as u64, but nothing here is near 2^53 */
  count(): number {
    return Number(this.u64())
  }

  string(): string {
    const n = this.count()
    this.#need(n)
    const s = this.#buf.toString('utf8', this.#pos, this.#pos + n)
    this.#pos += n
    return s
  }

  scalar(type: number): GGUFScalar {
    if (type === STRING) return this.string()
    const size = FIXED_SIZE[type]
    if (size === undefined) throw new Error(`unknown GGUF value type ${type}`)
    this.#need(size)
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
}

/** The header of a GGUF v2/v3 file: every metadata key with its value (arrays as JS arrays) and the tensor table. */
export function readGGUF(path: string): GGUFHeader {
  const fd = openSync(path, 'r')
  try {
    const c = new Cursor(fd)
    if (c.u32() !== 0x46554747) throw new Error(`${path} is not a GGUF file`) // "GGUF" little-endian
    const version = c.u32()
    if (version < 2) throw new Error(`${path}: GGUF version ${version} is not supported`)
    const nTensors = c.count()
    const nKv = c.count()
    const metadata = new Map<string, GGUFValue>()
    for (let i = 0; i < nKv; i++) {
      const key = c.string()
      const type = c.u32()
      if (type === ARRAY) {
        const elemType = c.u32()
        const n = c.count()
        const values: GGUFScalar[] = new Array(n)
        for (let j = 0; j < n; j++) values[j] = c.scalar(elemType)
        metadata.set(key, values)
      } else {
        metadata.set(key, c.scalar(type))
      }
    }
    const infos: Omit<TensorInfo, 'bytes'>[] = []
    for (let i = 0; i < nTensors; i++) {
      const name = c.string()
      const nDims = c.u32()
      const dims: number[] = []
      for (let d = 0; d < nDims; d++) dims.push(c.count())
      const type = c.u32()
      infos.push({ name, type, dims, offset: c.count() })
    }
    const alignment = Number(metadata.get('general.alignment') ?? 32)
    const dataOffset = Math.ceil(c.position / alignment) * alignment
    const fileBytes = fstatSync(fd).size
    // sizes from the gaps between offsets, so no table of ggml block sizes is needed here
    const byOffset = [...infos].sort((a, b) => a.offset - b.offset)
    const dataBytes = fileBytes - dataOffset
    const tensors = byOffset.map((t, i) => ({ ...t, bytes: (byOffset[i + 1]?.offset ?? dataBytes) - t.offset }))
    return { metadata, tensors, dataOffset, fileBytes }
  } finally {
    closeSync(fd)
  }
}

/** Every metadata key of a GGUF file with its value. */
export function readGGUFMetadata(path: string): Map<string, GGUFValue> {
  return readGGUF(path).metadata
}

// The parts of a GGUF file the benchmarks need: the tensor table (to know how many weight bytes one decode
// step must stream from memory) and the vocabulary's token types (to draw random prompts from ordinary
// tokens only). Reads the header and skips the tensor data.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

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

export interface GGUFSummary {
  fileBytes: number
  dataOffset: number
  tensors: TensorInfo[]
  architecture: string
  /** tokenizer.ggml.token_type: 1 = normal, 3 = control, 6 = byte, ... */
  tokenTypes: number[]
}

// gguf_type -> size of one fixed-size value; 8 = string, 9 = array
const FIXED: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }

class Reader {
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
    const rest = this.#buf.subarray(this.#pos)
    const chunk = Buffer.alloc(Math.max(n, 1 << 20))
    const got = readSync(this.#fd, chunk, 0, chunk.length, this.#filePos)
    this.#filePos += got
    this.#buf = Buffer.concat([rest, chunk.subarray(0, got)])
    this.#pos = 0
    if (this.#buf.length < n) throw new Error('GGUF header is truncated')
  }

  u32(): number {
    this.#need(4)
    const v = this.#buf.readUInt32LE(this.#pos)
    this.#pos += 4
    return v
  }

  u64(): number {
    this.#need(8)
    const v = Number(this.#buf.readBigUInt64LE(this.#pos))
    this.#pos += 8
    return v
  }

  string(): string {
    const n = this.u64()
    this.#need(n)
    const s = this.#buf.toString('utf8', this.#pos, this.#pos + n)
    this.#pos += n
    return s
  }

  /** integers come back as numbers, everything else is skipped (undefined) */
  value(type: number): number | string | undefined {
    if (type === 8) return this.string()
    const size = FIXED[type]
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
      case 10: return Number(b.readBigUInt64LE(p))
      case 11: return Number(b.readBigInt64LE(p))
      default: return undefined
    }
  }
}

export function readGGUFSummary(path: string): GGUFSummary {
  const fd = openSync(path, 'r')
  try {
    const r = new Reader(fd)
    if (r.u32() !== 0x46554747) throw new Error(`${path} is not a GGUF file`)
    const version = r.u32()
    if (version < 2) throw new Error(`${path}: GGUF version ${version} is not supported`)
    const nTensors = r.u64()
    const nKv = r.u64()
    let alignment = 32
    let architecture = 'unknown'
    let tokenTypes: number[] = []
    for (let i = 0; i < nKv; i++) {
      const key = r.string()
      const type = r.u32()
      if (type === 9) {
        const elemType = r.u32()
        const n = r.u64()
        const keep = key === 'tokenizer.ggml.token_type'
        const values: number[] = keep ? new Array<number>(n) : []
        for (let j = 0; j < n; j++) {
          const v = r.value(elemType)
          if (keep) values[j] = typeof v === 'number' ? v : 0
        }
        if (keep) tokenTypes = values
      } else {
        const v = r.value(type)
        if (key === 'general.alignment' && typeof v === 'number') alignment = v
        if (key === 'general.architecture' && typeof v === 'string') architecture = v
      }
    }
    const infos: Omit<TensorInfo, 'bytes'>[] = []
    for (let i = 0; i < nTensors; i++) {
      const name = r.string()
      const nDims = r.u32()
      const dims: number[] = []
      for (let d = 0; d < nDims; d++) dims.push(r.u64())
      const type = r.u32()
      const offset = r.u64()
      infos.push({ name, type, dims, offset })
    }
    const dataOffset = Math.ceil(r.position / alignment) * alignment
    const fileBytes = fstatSync(fd).size
    const dataBytes = fileBytes - dataOffset
    // sizes from the gaps between offsets, so no table of ggml block sizes is needed here
    const byOffset = [...infos].sort((a, b) => a.offset - b.offset)
    const tensors = byOffset.map((t, i) => ({ ...t, bytes: (byOffset[i + 1]?.offset ?? dataBytes) - t.offset }))
    return { fileBytes, dataOffset, tensors, architecture, tokenTypes }
  } finally {
    closeSync(fd)
  }
}

/**
 * Bytes of weights one decode step reads: every tensor, except that an embedding table which is not also
 * the output matrix contributes one row per token (its full size only when the output layer is tied to it).
 */
export function weightBytesPerToken(s: GGUFSummary): number {
  const tied = !s.tensors.some((t) => t.name === 'output.weight')
  let total = 0
  for (const t of s.tensors) {
    if (t.name === 'token_embd.weight' && !tied) total += t.bytes / (t.dims[1] ?? 1)
    else total += t.bytes
  }
  return total
}

/** Ids of ordinary tokens (type 1): no control, byte or unused ids, which servers may treat specially. */
export function normalTokenIds(s: GGUFSummary): Int32Array {
  if (s.tokenTypes.length === 0) throw new Error('the model has no tokenizer.ggml.token_type array')
  const ids: number[] = []
  s.tokenTypes.forEach((t, id) => {
    if (t === 1) ids.push(id)
  })
  return Int32Array.from(ids)
}

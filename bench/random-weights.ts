// Tensor data for random-weight models. Drawing ~1.2 billion normal samples in JS would take minutes, so one
// pool of N(0, 0.02) halves is drawn once (seeded, so files are reproducible) and every tensor reads it as a
// ring from its own starting point. The values only have to be plausible in scale, never meaningful: speed
// depends on shapes and types, not on the numbers.
import { mulberry32 } from './rng.js'

// ~8 MiB; odd, so no row length divides it and rows that wrap around the pool come back shifted, not repeated
const POOL_HALVES = (1 << 22) - 3
const STD = 0.02

/** Standard normal samples by Box-Muller. */
function normals(seed: number): () => number {
  const u = mulberry32(seed)
  let spare: number | null = null
  return () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    const r = Math.sqrt(-2 * Math.log(1 - u()))
    const phi = 2 * Math.PI * u()
    spare = r * Math.sin(phi)
    return r * Math.cos(phi)
  }
}

const f32 = new Float32Array(1)
const f32Bits = new Uint32Array(f32.buffer)

/** IEEE half bits of x, rounded to nearest even; subnormals kept (|x| < 6.1e-5 is common at std 0.02). */
export function toHalf(x: number): number {
  f32[0] = x
  const b = f32Bits[0]!
  const sign = (b >>> 16) & 0x8000
  const exp = (b >>> 23) & 0xff
  const mant = b & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  // normal halves drop 13 mantissa bits; subnormals drop more and gain the implicit leading 1
  const shift = e > 0 ? 13 : 14 - e
  if (shift > 24) return sign
  const m = e > 0 ? mant : mant | 0x800000
  let half = (e > 0 ? e << 10 : 0) | (m >>> shift)
  const rem = m & ((1 << shift) - 1)
  const halfway = 1 << (shift - 1)
  // a carry out of the mantissa bumps the exponent, which is exactly the rounded value
  if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++
  return sign | half
}

let pool: Uint8Array | null = null

function halfPool(): Uint8Array {
  if (!pool) {
    const n = normals(0x5eed)
    const halves = new Uint16Array(POOL_HALVES)
    for (let i = 0; i < halves.length; i++) halves[i] = toHalf(n() * STD)
    pool = new Uint8Array(halves.buffer)
  }
  return pool
}

/** FNV-1a of the tensor name: a stable per-tensor start in the pool. */
function hash(name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** `bytes` of F16 N(0, 0.02) values as views into the shared pool (no copies; the pool is never written). */
export function* randomHalves(name: string, bytes: number): Generator<Uint8Array> {
  const p = halfPool()
  let at = (hash(name) % POOL_HALVES) * 2
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, p.length - at)
    yield p.subarray(at, at + n)
    left -= n
    at = (at + n) % p.length
  }
}

/** F32 N(0, 0.02) values (small tensors only: biases). */
export function randomFloats(name: string, count: number): Uint8Array {
  const n = normals(hash(name))
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = n() * STD
  return new Uint8Array(out.buffer)
}

export function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

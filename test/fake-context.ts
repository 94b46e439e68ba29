// A stand-in for the native context, for scheduler tests without a model: every step waits until the test settles
// it, and records what it was asked to decode. Token t's text is one letter; token 0 is end-of-generation.
import type { NativeSamplerParams, NativeSeqState, NativeStepResult } from '../lib/native.js'
import type { StepContext } from '../lib/scheduler.js'
import { TokenPieces } from '../lib/token-text.js'

export const VOCAB = 27 // token 0 = end of generation, 1..26 = 'a'..'z'

export function letterPieces(): TokenPieces {
  const enc = new TextEncoder()
  const texts = Array.from({ length: VOCAB }, (_, t) => (t === 0 ? '' : String.fromCharCode(96 + t)))
  const chunks = texts.map((x) => enc.encode(x))
  const offsets = new Uint32Array(VOCAB + 1)
  chunks.forEach((c, i) => (offsets[i + 1] = offsets[i]! + c.length))
  const bytes = new Uint8Array(offsets[VOCAB]!)
  chunks.forEach((c, i) => bytes.set(c, offsets[i]!))
  return new TokenPieces({ bytes, offsets })
}

export interface StepCall {
  tokens: number[]
  positions: number[]
  seqIds: number[]
  sampleAt: number[]
  /** settles the step: `next` gives each sampled entry's token (default: the input token + 1, wrapping past z) */
  settle(next?: (seq: number, entry: number) => number, extra?: Partial<NativeStepResult>): void
  fail(err: Error): void
}

/** A saved sequence: how many positions it held, and whether the cache freed it. */
export class FakeState implements NativeSeqState {
  readonly seq: number
  readonly nPos: number
  readonly byteLength: number
  disposed = false

  constructor(seq: number, nPos: number, bytesPerCell: number) {
    this.seq = seq
    this.nPos = nPos
    this.byteLength = nPos * bytesPerCell
  }

  dispose(): void {
    this.disposed = true
  }
}

export class FakeContext implements StepContext {
  readonly calls: StepCall[] = []
  readonly removed: [number, number][] = []
  readonly copied: [number, number, number][] = []
  /** seqSave calls: [seq, positions saved] */
  readonly saves: [number, number][] = []
  /** seqRestore calls: [seq, positions the state held, keep] */
  readonly restores: [number, number, number][] = []
  /** positions each sequence holds, as the native side would see them */
  readonly lengths = new Map<number, number>()
  /** a saved state's size per cell */
  bytesPerCell = 100
  /** make the next seqRestore reject */
  failRestore = false
  readonly samplers = new Map<number, NativeSamplerParams | null>()
  /** make the next step() throw synchronously */
  throwNext: Error | null = null
  #taken = 0
  #onCall: (() => void)[] = []

  step(tokens: Int32Array, positions: Int32Array, seqIds: Int32Array, sampleAt: Int32Array): Promise<NativeStepResult> {
    if (this.throwNext) {
      const err = this.throwNext
      this.throwNext = null
      throw err
    }
    return new Promise((resolve, reject) => {
      const call: StepCall = {
        tokens: [...tokens],
        positions: [...positions],
        seqIds: [...seqIds],
        sampleAt: [...sampleAt],
        settle(next, extra = {}) {
          const out = call.sampleAt.map((at, k) => (next ? next(call.seqIds[at]!, k) : (call.tokens[at]! % 26) + 1))
          resolve({
            tokens: Int32Array.from(out),
            status: new Int32Array(out.length),
            errors: out.map(() => ''),
            logprobs: new Float32Array(out.length).fill(NaN),
            nTop: 0,
            topIds: new Int32Array(0),
            topLogprobs: new Float32Array(0),
            decodeUs: 0,
            sampleUs: 0,
            ...extra,
          })
        },
        fail: reject,
      }
      for (let i = 0; i < seqIds.length; i++) this.lengths.set(seqIds[i]!, Math.max(this.lengths.get(seqIds[i]!) ?? 0, positions[i]! + 1))
      this.calls.push(call)
      for (const wake of this.#onCall.splice(0)) wake()
    })
  }

  /** The next step the scheduler starts (one already started and not yet taken is returned at once). */
  async nextStep(): Promise<StepCall> {
    return (await this.nextStepOr(new Promise<never>(() => undefined)))!
  }

  /** The next step, or null if `other` settles first and no step is waiting. */
  async nextStepOr(other: Promise<unknown>): Promise<StepCall | null> {
    const done = other.then(
      () => true,
      () => true,
    )
    for (;;) {
      if (this.calls.length > this.#taken) return this.calls[this.#taken++]!
      const called = new Promise<false>((resolve) => this.#onCall.push(() => resolve(false)))
      if (await Promise.race([called, done])) {
        if (this.calls.length > this.#taken) continue
        return null
      }
    }
  }

  setSampler(seq: number, params: NativeSamplerParams | null): void {
    this.samplers.set(seq, params)
  }

  seqRemove(seq: number, p0 = -1): boolean {
    this.removed.push([seq, p0])
    this.lengths.set(seq, p0 <= 0 ? 0 : Math.min(this.lengths.get(seq) ?? 0, p0))
    return true
  }

  seqCopy(src: number, dst: number, _p0 = -1, p1 = -1): void {
    this.copied.push([src, dst, p1])
    this.lengths.set(dst, p1 < 0 ? (this.lengths.get(src) ?? 0) : p1)
  }

  async seqSave(seq: number): Promise<FakeState> {
    const n = this.lengths.get(seq) ?? 0
    this.saves.push([seq, n])
    return new FakeState(seq, n, this.bytesPerCell)
  }

  async seqRestore(seq: number, state: NativeSeqState, keep = -1): Promise<number> {
    const s = state as FakeState
    this.restores.push([seq, s.nPos, keep])
    if (this.failRestore) {
      this.failRestore = false
      this.lengths.set(seq, 0)
      throw Object.assign(new Error('no room in the stream'), { code: 'state_restore_failed' })
    }
    if (s.disposed) throw Object.assign(new Error('the saved state was disposed'), { code: 'state_restore_failed' })
    const n = keep < 0 ? s.nPos : Math.min(keep, s.nPos)
    this.lengths.set(seq, n)
    return n
  }
}

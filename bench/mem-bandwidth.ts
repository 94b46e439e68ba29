// Memory bandwidth, measured the way STREAM's "copy" does it: large buffers copied over and over, counting the
// bytes read plus the bytes written. Decode of one token must stream every weight once, so bandwidth divided by
// the weight bytes is a hard ceiling on single-stream decode speed; the single-stream scenario reports it.
//   node dist/bench/mem-bandwidth.js [--mb 128] [--passes 6]
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'

export interface Bandwidth {
  /** bytes per second, best pass, one thread */
  singleThread: number
  /** bytes per second, best pass, all threads together */
  allThreads: number
  threads: number
  best: number
}

interface WorkerInput {
  bytes: number
  passes: number
  /** [0] = start flag, [1] = workers ready */
  control: SharedArrayBuffer
}

/** Buffers well past any last-level cache, touched first so page faults stay out of the timing. */
function buffers(bytes: number): [Float64Array, Float64Array] {
  const src = new Float64Array(bytes / 8)
  const dst = new Float64Array(bytes / 8)
  for (let i = 0; i < src.length; i += 512) src[i] = i
  dst.fill(1)
  return [src, dst]
}

/** seconds of one copy (src -> dst), the fastest of `passes` */
function bestCopy(src: Float64Array, dst: Float64Array, passes: number): number {
  let best = Infinity
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now()
    dst.set(src)
    best = Math.min(best, (performance.now() - t0) / 1000)
  }
  return best
}

function workerMain(): void {
  const input = workerData as WorkerInput
  const control = new Int32Array(input.control)
  const [src, dst] = buffers(input.bytes)
  Atomics.add(control, 1, 1)
  Atomics.notify(control, 1)
  Atomics.wait(control, 0, 0)
  for (let p = 0; p < input.passes; p++) dst.set(src)
  parentPort!.postMessage('done')
}

async function allThreads(threads: number, bytes: number, passes: number): Promise<number> {
  const control = new Int32Array(new SharedArrayBuffer(8))
  const workers = Array.from(
    { length: threads },
    () => new Worker(fileURLToPath(import.meta.url), { workerData: { bytes, passes, control: control.buffer } satisfies WorkerInput }),
  )
  try {
    while (Atomics.load(control, 1) < threads) await new Promise((r) => setTimeout(r, 5))
    const done = workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve)
      w.once('error', reject)
    }))
    const t0 = performance.now()
    Atomics.store(control, 0, 1)
    Atomics.notify(control, 0)
    await Promise.all(done)
    const seconds = (performance.now() - t0) / 1000
    return (2 * bytes * passes * threads) / seconds
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}

export async function measureBandwidth(mb = 128, passes = 6, threads = availableParallelism()): Promise<Bandwidth> {
  const bytes = mb * 2 ** 20
  let single: number
  {
    const [src, dst] = buffers(bytes)
    single = (2 * bytes) / bestCopy(src, dst, passes)
  }
  // a few trials: on a shared machine one of them usually runs undisturbed
  let multi = 0
  for (let trial = 0; trial < 3; trial++) multi = Math.max(multi, await allThreads(threads, bytes, passes))
  return { singleThread: single, allThreads: multi, threads, best: Math.max(single, multi) }
}

if (!isMainThread) {
  workerMain()
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { mb: { type: 'string', default: '128' }, passes: { type: 'string', default: '6' } } })
  const b = await measureBandwidth(Number(values.mb), Number(values.passes))
  const gbs = (v: number) => `${(v / 1e9).toFixed(2)} GB/s`
  console.log(`copy bandwidth (read + write): 1 thread ${gbs(b.singleThread)}, ${b.threads} threads ${gbs(b.allThreads)}, best ${gbs(b.best)}`)
}

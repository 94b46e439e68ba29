// Random-weight GGUF models in the exact shapes of real chat models, for benchmarks that must not depend on
// downloads. The F16 file is written here; Q8_0 and Q4_0 come from it through llama.cpp's own quantiser, so
// their tensor types (including the ones llama.cpp chooses to keep at higher precision) match real quants.
//   node dist/bench/make-model.js [--shape qwen2.5-0.5b|llama-3.2-1b|all] [--type f16|q8_0|q4_0|all]
//                                 [--out bench/models] [--check]
// Prints the path of every requested file; existing files are reused.
import { existsSync } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { defaultModelPath } from '../lib/index.js'
import { native } from '../lib/native.js'
import { checkModel, formatCheck } from './check-model.js'
import { tensorBytes, writeGGUF, type TensorSpec } from './gguf-writer.js'
import { llama3RopeFactors, modelMetadata, parameterCount, SHAPES, tensorPlan, type ShapeId, type TensorPlan } from './model-shapes.js'
import { floatBytes, randomFloats, randomHalves } from './random-weights.js'
import { syntheticVocab } from './synthetic-vocab.js'

export type ModelType = 'f16' | 'q8_0' | 'q4_0'
export const MODEL_TYPES: readonly ModelType[] = ['f16', 'q8_0', 'q4_0']
export const SHAPE_IDS = Object.keys(SHAPES) as ShapeId[]

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const defaultModelsDir = join(root, 'bench', 'models')

const log = (msg: string) => process.stderr.write(`make-model: ${msg}\n`)
const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`
const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`

function tensorData(shapeId: ShapeId, t: TensorPlan): TensorSpec['data'] {
  const bytes = tensorBytes(t)
  switch (t.fill) {
    case 'random':
      return t.type === 'F16' ? () => randomHalves(t.name, bytes) : () => [randomFloats(t.name, bytes / 4)]
    case 'ones':
      return () => [floatBytes(new Float32Array(bytes / 4).fill(1))]
    case 'rope-freqs':
      return () => [floatBytes(llama3RopeFactors(SHAPES[shapeId]))]
  }
}

async function writeF16(shapeId: ShapeId, path: string): Promise<void> {
  const shape = SHAPES[shapeId]
  const t0 = Date.now()
  const vocab = syntheticVocab(shape.vocab, defaultModelPath)
  const tensors = tensorPlan(shape).map((t) => ({ ...t, data: tensorData(shapeId, t) }))
  log(`writing ${relative(root, path)} (${(parameterCount(shape) / 1e6).toFixed(0)}M parameters)`)
  const size = await writeGGUF(path, modelMetadata(shape, vocab), tensors)
  log(`wrote ${relative(root, path)}: ${gb(size)} in ${since(t0)}`)
}

async function quantize(f16: string, path: string, type: Exclude<ModelType, 'f16'>): Promise<void> {
  const t0 = Date.now()
  const partial = `${path}.partial`
  log(`quantizing ${relative(root, f16)} to ${type}`)
  try {
    await native.quantize(f16, partial, type, availableParallelism())
    await rename(partial, path)
  } catch (err) {
    await rm(partial, { force: true })
    throw err
  }
  log(`wrote ${relative(root, path)}: ${gb((await stat(path)).size)} in ${since(t0)}`)
}

// one creation per file at a time, so e.g. q8_0 and q4_0 requested together write their F16 source once
const pending = new Map<string, Promise<string>>()

/** Path of the `shape`/`type` model in `dir`, created (with its F16 source) only when missing. */
export async function ensureModel(shape: ShapeId, type: ModelType, dir: string = defaultModelsDir): Promise<string> {
  if (!(shape in SHAPES)) throw new Error(`unknown shape ${shape}; one of ${SHAPE_IDS.join(', ')}`)
  if (!MODEL_TYPES.includes(type)) throw new Error(`unknown type ${type}; one of ${MODEL_TYPES.join(', ')}`)
  const path = join(dir, `${shape}-${type}.gguf`)
  if (existsSync(path)) return path
  let job = pending.get(path)
  if (!job) {
    job = (async () => {
      await mkdir(dir, { recursive: true })
      if (type === 'f16') await writeF16(shape, path)
      else await quantize(await ensureModel(shape, 'f16', dir), path, type)
      return path
    })().finally(() => pending.delete(path))
    pending.set(path, job)
  }
  return job
}

function pick<T extends string>(value: string, all: readonly T[], what: string): T[] {
  if (value === 'all') return [...all]
  if (!(all as readonly string[]).includes(value)) throw new Error(`--${what} must be one of ${all.join(', ')} or all`)
  return [value as T]
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shape: { type: 'string', default: 'all' },
      type: { type: 'string', default: 'all' },
      out: { type: 'string', default: defaultModelsDir },
      check: { type: 'boolean', default: false },
    },
  })
  const shapes = pick(values.shape, SHAPE_IDS, 'shape')
  const types = pick(values.type, MODEL_TYPES, 'type')
  const paths: string[] = []
  for (const shape of shapes) {
    for (const type of types) {
      const path = await ensureModel(shape, type, values.out)
      console.log(path)
      paths.push(path)
    }
  }
  if (values.check) for (const path of paths) log(formatCheck(await checkModel(path)))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}

// `npm run test-models`: small random-weight GGUF files for tests that need what the built-in model lacks (a
// real chat template with its special tokens), written into the git-ignored .cache/test-models/. Tests call
// ensureTestModel()/ensureTestModels(), which make a file only when it is missing or stale.
//   node dist/test/models/make-test-models.js [--only qwen3.gguf,...] [--out DIR] [--force]
// Prints the path of every file; a line per file on stderr says whether it was made or already there.
//
// A file counts as complete when it exists and its `<file>.recipe` stamp matches: a file is written under a
// temporary name and renamed into place before its stamp, so an interrupted run never leaves a half file that
// counts, and changing a family (or llama.cpp's copy of its template) remakes only that file. Processes that
// race on a cold cache each write their own temporary file; identical bytes are renamed into place.
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { packageRoot } from '../../lib/native.js'
import { CHAT_FAMILIES, type ChatFamily } from './chat-families.js'
import { chatModelRecipe, writeChatModel } from './chat-model.js'
import { encoderModelRecipe, writeEncoderModel } from './encoder-model.js'
import { projectorRecipe, TINY_PROJECTOR_SHAPE, writeProjector } from '../../bench/projector-model.js'

/** One file of the cache. A new family or file is one more entry in TEST_MODELS. */
export interface TestModel<F extends string = string> {
  /** file name in the cache folder */
  file: F
  /** one line for people: what the file is for */
  description: string
  /** files of other entries this one is made from: made first, and their recipes are part of this one's */
  from?: readonly string[]
  /** everything the bytes depend on besides the code (specs, template texts); a change remakes the file */
  recipe(): string
  /** writes the file at `out`, a temporary name; `inputs` are the paths of `from`, in order */
  make(out: string, inputs: string[]): Promise<void>
}

/** Bump when the code that writes the files changes what it writes, so cached files are remade. */
const CODE_VERSION = 1

function chatTestModel<F extends string>(family: ChatFamily & { file: F }): TestModel<F> {
  return {
    file: family.file,
    description: `${family.realName} chat template and special tokens, tiny random weights`,
    recipe: () => chatModelRecipe(family),
    make: async (out) => {
      await writeChatModel(family, out)
    },
  }
}

/** The vision pair's text model: Qwen2.5's tokenizer and template, 64 wide as the test projector's output. */
const VISION_TEXT_FAMILY = { ...CHAT_FAMILIES.find((f) => f.file === 'qwen2.5.gguf')!, file: 'vision-text.gguf' as const }

const visionPair = [
  { ...chatTestModel(VISION_TEXT_FAMILY), description: 'text model of the vision pair (Qwen2.5 template, tiny random weights)' },
  {
    file: 'vision-mmproj.gguf' as const,
    description: "random-weight projector in llama.cpp's mlp (LLaVA) layout for vision-text.gguf: 16 embeddings per image",
    recipe: () => projectorRecipe(TINY_PROJECTOR_SHAPE, 'vision-mmproj'),
    make: async (out: string) => {
      await writeProjector(out, TINY_PROJECTOR_SHAPE, 'vision-mmproj')
    },
  },
]

/** An embedding model for the EmbeddingModel path (`type: "embeddings"`), in llama.cpp's BERT layout. */
const encoder = {
  file: 'bert-embed.gguf' as const,
  description: 'BERT-style encoder (WordPiece vocabulary, mean pooling), 64 wide, tiny random weights',
  recipe: encoderModelRecipe,
  make: async (out: string) => {
    await writeEncoderModel(out)
  },
}

export const TEST_MODELS = [...CHAT_FAMILIES.map(chatTestModel), ...visionPair, encoder]

export type TestModelFile = (typeof TEST_MODELS)[number]['file']

export const defaultTestModelsDir = join(packageRoot, '.cache', 'test-models')

export interface EnsureOptions {
  /** the cache folder; default .cache/test-models in the package root */
  dir?: string
  /** called after each file that had to be made */
  onMade?: (file: string, sizeBytes: number, ms: number) => void
}

function entry(file: string): TestModel {
  const m = TEST_MODELS.find((x) => x.file === file)
  if (!m) throw new Error(`unknown test model ${file}; one of ${TEST_MODELS.map((x) => x.file).join(', ')}`)
  return m
}

function recipeStamp(m: TestModel): string {
  const h = createHash('sha256').update(`hearth test model v${CODE_VERSION}\n${m.recipe()}`)
  for (const input of m.from ?? []) h.update(`\nfrom ${input}: ${recipeStamp(entry(input))}`)
  return h.digest('hex')
}

function isCurrent(path: string, stamp: string): boolean {
  if (!existsSync(path)) return false
  try {
    return readFileSync(`${path}.recipe`, 'utf8') === stamp
  } catch {
    return false
  }
}

const TEMP = /\.(\d+)\.[0-9a-f]+\.tmp(\.partial)?$/

/** Removes temporary files of `file` left by processes that no longer run (an interrupted make). */
async function removeAbandoned(dir: string, file: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const pid = name.startsWith(`${file}.`) ? TEMP.exec(name)?.[1] : undefined
    if (pid === undefined || Number(pid) === process.pid) continue
    try {
      process.kill(Number(pid), 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') await rm(join(dir, name), { force: true })
    }
  }
}

/** Writes `text` to `path` through a temporary name, so readers see the old text or the new, never a part. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text)
  await rename(tmp, path)
}

// one make per file at a time in this process; other processes may make the same file concurrently
const pending = new Map<string, Promise<string>>()

async function ensure(file: string, dir: string, onMade: EnsureOptions['onMade']): Promise<string> {
  const m = entry(file)
  const path = join(dir, m.file)
  const stamp = recipeStamp(m)
  if (isCurrent(path, stamp)) return path
  let job = pending.get(path)
  if (!job) {
    job = (async () => {
      await mkdir(dir, { recursive: true })
      const inputs: string[] = []
      for (const input of m.from ?? []) inputs.push(await ensure(input, dir, onMade))
      await removeAbandoned(dir, m.file)
      const t0 = performance.now()
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
      try {
        await m.make(tmp, inputs)
        await rename(tmp, path)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      }
      await writeAtomic(`${path}.recipe`, stamp)
      onMade?.(m.file, (await stat(path)).size, performance.now() - t0)
      return path
    })().finally(() => pending.delete(path))
    pending.set(path, job)
  }
  return job
}

/** Path of one test model, made only when it is missing or stale. */
export async function ensureTestModel(file: TestModelFile, options: EnsureOptions = {}): Promise<string> {
  return ensure(file, options.dir ?? defaultTestModelsDir, options.onMade)
}

/** Paths of `files` (default: every test model) by file name, each made only when missing or stale. */
export async function ensureTestModels(
  files: readonly TestModelFile[] = TEST_MODELS.map((m) => m.file),
  options: EnsureOptions = {},
): Promise<Record<TestModelFile, string>> {
  const paths: Partial<Record<TestModelFile, string>> = {}
  for (const file of files) paths[file] = await ensureTestModel(file, options)
  return paths as Record<TestModelFile, string>
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      out: { type: 'string', default: defaultTestModelsDir },
      force: { type: 'boolean', default: false },
    },
  })
  const files = values.only ? values.only.split(',').map((f) => entry(f.trim()).file as TestModelFile) : TEST_MODELS.map((m) => m.file)
  if (values.force) for (const file of files) await rm(join(values.out, `${file}.recipe`), { force: true })
  const log = (line: string) => process.stderr.write(`test-models: ${line}\n`)
  const t0 = performance.now()
  const made = new Set<string>()
  const onMade = (file: string, sizeBytes: number, ms: number) => {
    made.add(file)
    log(`made ${file}: ${(sizeBytes / 1e6).toFixed(2)} MB in ${(ms / 1000).toFixed(2)} s`)
  }
  const paths = await ensureTestModels(files, { dir: values.out, onMade })
  for (const file of files) {
    if (!made.has(file)) log(`${file} is up to date`)
    console.log(paths[file])
  }
  log(`${files.length} files ready in ${((performance.now() - t0) / 1000).toFixed(2)} s`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}

// The image scenario's vision projector: a random-weight SigLIP-so400m (384 px, 729 embeddings per image) in
// llama.cpp's mlp (LLaVA) layout into the 896 wide Qwen2.5-0.5B shape, written once into the git-ignored
// bench/models/ and reused while its recipe stamp matches (see projector-model.ts for the layout).
//   node dist/bench/make-projector.js [--out bench/models]
// Prints the file's path.
//
// The name must not start with "mmproj-": hearth pairs such a file with every model in the same folder, and the
// other scenarios serve bench/models/ models without a projector.
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { repoRoot } from './harness/paths.js'
import { projectorRecipe, SIGLIP_SHAPE, writeProjector } from './projector-model.js'

export const PROJECTOR_FILE = 'siglip-so400m-proj-qwen2.5-0.5b-f16.gguf'
const PROJECTOR_NAME = 'bench-siglip-so400m'

const log = (msg: string) => process.stderr.write(`make-projector: ${msg}\n`)

// make-model.ts's folder, named here too: importing make-model would load the native addon for nothing
const defaultModelsDir = join(repoRoot, 'bench', 'models')

let pending: Promise<string> | null = null

/** Path of the benchmark projector in `dir`, written only when missing or made from another recipe. */
export function ensureProjector(dir: string = defaultModelsDir): Promise<string> {
  const path = join(dir, PROJECTOR_FILE)
  const stamp = projectorRecipe(SIGLIP_SHAPE, PROJECTOR_NAME)
  const current = existsSync(path) && existsSync(`${path}.recipe`) && readFileSync(`${path}.recipe`, 'utf8') === stamp
  if (current) return Promise.resolve(path)
  pending ??= (async () => {
    await mkdir(dir, { recursive: true })
    const partial = `${path}.partial`
    const t0 = Date.now()
    log(`writing ${relative(repoRoot, path)} (SigLIP-so400m shape, random F16 weights)`)
    try {
      const bytes = await writeProjector(partial, SIGLIP_SHAPE, PROJECTOR_NAME)
      // the file before its stamp: an interrupted run leaves no stamp that vouches for a half file
      await rename(partial, path)
      await writeFile(`${path}.recipe`, stamp)
      log(`wrote ${relative(repoRoot, path)}: ${(bytes / 1e9).toFixed(2)} GB in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    } catch (err) {
      await rm(partial, { force: true })
      throw err
    }
    return path
  })().finally(() => {
    pending = null
  })
  return pending
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: defaultModelsDir } } })
  ensureProjector(values.out).then(
    (path) => console.log(path),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err)
      process.exit(1)
    },
  )
}

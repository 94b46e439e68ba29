// Fetches llama.cpp's pinned source into deps/llama.cpp (git-ignored) without copying it into the repo.
// The source is the git bundle that node-llama-cpp@3.22.1 ships (upstream llama.cpp v0.5.0): the tarball
// comes from the npm registry, its integrity is checked against the pinned hash, only the bundle is
// extracted, and the clone's tree hash is checked against the pinned tree. Idempotent: a tree that already
// matches is left alone. node-llama-cpp itself is never installed and none of its code or binaries are used.
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const LLAMA_PACKAGE = 'node-llama-cpp@3.22.1'
export const LLAMA_INTEGRITY =
  'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=='
export const LLAMA_TREE = 'fd570ef54b10ec5fecb739e7e04c8ce44a6f415a'
export const LLAMA_RELEASE = 'v0.5.0'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const deps = join(root, 'deps')
const cache = join(deps, '.cache')
const target = join(deps, 'llama.cpp')

function git(args, cwd) {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

function treeOf(dir) {
  try {
    return git(['rev-parse', 'HEAD^{tree}'], dir)
  } catch {
    return null
  }
}

function integrityOf(file) {
  return 'sha512-' + createHash('sha512').update(readFileSync(file)).digest('base64')
}

function fetchTarball() {
  mkdirSync(cache, { recursive: true })
  const name = LLAMA_PACKAGE.replace('@', '-') + '.tgz'
  const file = join(cache, name)
  if (existsSync(file) && integrityOf(file) === LLAMA_INTEGRITY) return file
  console.log(`hearth: fetching ${LLAMA_PACKAGE} from the npm registry (llama.cpp ${LLAMA_RELEASE} source bundle)`)
  execFileSync('npm', ['pack', LLAMA_PACKAGE, '--pack-destination', cache, '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    shell: process.platform === 'win32',
  })
  const got = integrityOf(file)
  if (got !== LLAMA_INTEGRITY) {
    rmSync(file, { force: true })
    throw new Error(`${LLAMA_PACKAGE} integrity mismatch: expected ${LLAMA_INTEGRITY}, got ${got}`)
  }
  return file
}

export function fetchLlama() {
  if (treeOf(target) === LLAMA_TREE) return target
  const tarball = fetchTarball()
  const unpack = join(cache, 'unpack')
  rmSync(unpack, { recursive: true, force: true })
  mkdirSync(unpack, { recursive: true })
  execFileSync('tar', ['-xzf', tarball, '-C', unpack, 'package/llama/gitRelease.bundle'], { stdio: 'inherit' })
  const bundle = join(unpack, 'package', 'llama', 'gitRelease.bundle')
  rmSync(target, { recursive: true, force: true })
  execFileSync('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', bundle, target], { stdio: ['ignore', 'ignore', 'inherit'] })
  rmSync(unpack, { recursive: true, force: true })
  const tree = treeOf(target)
  if (tree !== LLAMA_TREE) {
    throw new Error(`deps/llama.cpp has tree ${tree}, expected ${LLAMA_TREE}`)
  }
  console.log(`hearth: llama.cpp ${LLAMA_RELEASE} is in deps/llama.cpp (tree ${tree})`)
  return target
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    fetchLlama()
  } catch (err) {
    console.error(`hearth: could not fetch llama.cpp: ${err.message}`)
    process.exit(1)
  }
}

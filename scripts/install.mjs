// `npm install` step: use a prebuilt addon from prebuilds/ when one loads on this machine, otherwise fetch
// llama.cpp's pinned source and build the addon with cmake-js (incremental after the first build).
//   HEARTH_GPU=cuda|vulkan|metal   build a GPU backend in (CPU only by default)
//   HEARTH_PORTABLE=1              portable AVX2 build (GGML_NATIVE=OFF) instead of one tuned for this CPU
//   --force                        build from source even when a prebuilt addon loads
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { availableParallelism } from 'node:os'
import { fetchLlama } from './fetch-llama.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const force = process.argv.includes('--force')

function prebuiltLoads() {
  if (!existsSync(join(root, 'prebuilds'))) return false
  try {
    const path = require('node-gyp-build').resolve(root)
    if (!path.includes(`${join(root, 'prebuilds')}`)) return false
    require(path)
    console.log(`hearth: using prebuilt addon ${path}`)
    return true
  } catch {
    return false
  }
}

export function cmakeArgs({ gpu = process.env.HEARTH_GPU ?? '', portable = process.env.HEARTH_PORTABLE === '1' } = {}) {
  const args = [`--CDHEARTH_GPU=${gpu}`, `--CDGGML_NATIVE=${portable ? 'OFF' : 'ON'}`]
  if (portable) args.push('--CDGGML_AVX=ON', '--CDGGML_AVX2=ON', '--CDGGML_FMA=ON', '--CDGGML_F16C=ON')
  return args
}

export function buildAddon(extra = [], options = {}) {
  fetchLlama()
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js')
  const started = Date.now()
  console.log('hearth: building the native addon (llama.cpp + hearth.node); the first build takes a few minutes')
  execFileSync(process.execPath, [cmakeJs, 'build', '--log-level', 'warn', '--parallel', String(availableParallelism()),
    ...cmakeArgs(options), ...extra], { cwd: root, stdio: 'inherit' })
  console.log(`hearth: addon built in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!force && prebuiltLoads()) process.exit(0)
  try {
    buildAddon()
  } catch (err) {
    console.error(`hearth: the native build failed (${err.message}).`)
    console.error('hearth: it needs cmake >= 3.18, a C++17 compiler, git and tar; see README.md, "Building from source".')
    process.exit(1)
  }
}

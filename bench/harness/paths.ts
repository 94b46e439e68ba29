// Where things live, resolved from this file so the benchmarks run from any working directory. Compiled code
// sits in dist/bench/harness/, the repository root is three levels up.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const resultsDir = join(repoRoot, 'bench', 'results')
export const hearthCli = join(repoRoot, 'bin', 'hearth.js')
export const tinyModelPath = join(repoRoot, 'models', 'austen-kjv-2.6m-f32.gguf')
/** where bench/build-llama-server.mjs builds the peer by default (never under deps/, which may be a shared link) */
export const llamaServerBuildDir = join(repoRoot, 'bench', 'llama-server-build')
export const defaultLlamaServer = join(llamaServerBuildDir, 'bin', process.platform === 'win32' ? 'llama-server.exe' : 'llama-server')
export const buildLlamaServerScript = join(repoRoot, 'bench', 'build-llama-server.mjs')
export const distBench = join(repoRoot, 'dist', 'bench')

// Builds llama.cpp's own `llama-server` from the same deps/llama.cpp source and CPU flags as hearth's addon, so
// the peer benchmark compares the two servers and not two builds of ggml. Plain ESM so it runs before `tsc`.
//   node bench/build-llama-server.mjs [--force] [--out DIR]
// Output: bench/llama-server-build/bin/llama-server (git-ignored), or DIR/bin/llama-server. Prints the binary
// path last. Never inside deps/: in a git worktree deps/ may be a read-only link to another checkout's source.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = join(root, 'deps', 'llama.cpp')
const outIndex = process.argv.indexOf('--out')
const buildDir = outIndex > 0 && process.argv[outIndex + 1] ? resolve(process.argv[outIndex + 1]) : join(root, 'bench', 'llama-server-build')
const depsDirs = [join(root, 'deps'), ...(existsSync(join(root, 'deps')) ? [realpathSync(join(root, 'deps'))] : [])]
if (depsDirs.some((d) => !relative(d, buildDir).startsWith('..'))) {
  console.error(`refusing to build into ${buildDir}: deps/ holds the shared llama.cpp source, build outside it`)
  process.exit(1)
}
const binary = join(buildDir, 'bin', process.platform === 'win32' ? 'llama-server.exe' : 'llama-server')
// Records which llama.cpp commit the binary came from: mtimes alone miss a checkout of an older commit.
const stamp = join(buildDir, 'llama-server.commit')
const force = process.argv.includes('--force')

const cmakeFlags = [
  '-DCMAKE_BUILD_TYPE=Release',
  // the addon's flags (CMakeLists.txt, scripts/install.mjs): static ggml/llama tuned for this CPU
  '-DGGML_NATIVE=ON',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DGGML_BACKEND_DL=OFF',
  '-DGGML_CCACHE=OFF',
  '-DLLAMA_ALL_WARNINGS=OFF',
  // the server and nothing else
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_APP=OFF',
  // offline: no web UI from npm or the Hugging Face bucket (the server then embeds an empty UI), no OpenSSL
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DLLAMA_OPENSSL=OFF',
]

function git(args) {
  return execFileSync('git', args, { cwd: source, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** The commit of deps/llama.cpp and when it was checked out here (.git/HEAD is rewritten by every checkout). */
function sourceHead() {
  const commit = git(['rev-parse', 'HEAD'])
  const headFile = join(source, '.git', 'HEAD')
  const checkedOut = existsSync(headFile) ? statSync(headFile).mtimeMs : 0
  const committed = Number(git(['log', '-1', '--format=%ct'])) * 1000
  return { commit, time: Math.max(checkedOut, committed) }
}

function upToDate(head) {
  if (!existsSync(binary) || !existsSync(stamp)) return false
  return readFileSync(stamp, 'utf8').trim() === head.commit && statSync(binary).mtimeMs > head.time
}

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(' ')}`)
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit' })
}

function hasNinja() {
  try {
    execFileSync('ninja', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

if (!existsSync(join(source, 'CMakeLists.txt'))) {
  console.error(`llama.cpp source not found at ${source}: run \`node scripts/fetch-llama.mjs\` first`)
  process.exit(1)
}

const head = sourceHead()
if (!force && upToDate(head)) {
  console.log(`llama-server is up to date with llama.cpp ${head.commit.slice(0, 10)}`)
} else {
  const started = Date.now()
  // Ninja when present, like the addon's cmake-js build; an existing build folder keeps its generator
  const generator = !existsSync(join(buildDir, 'CMakeCache.txt')) && hasNinja() ? ['-G', 'Ninja'] : []
  try {
    run('cmake', ['-S', source, '-B', buildDir, ...generator, ...cmakeFlags])
    // two jobs: matches the two-core bench machine without starving other work of memory
    run('cmake', ['--build', buildDir, '--config', 'Release', '--target', 'llama-server', '--parallel', '2'])
  } catch (err) {
    console.error(`llama-server build failed: ${err.message.split('\n')[0]}`)
    process.exit(1)
  }
  if (!existsSync(binary)) {
    console.error(`build finished but ${binary} is missing`)
    process.exit(1)
  }
  writeFileSync(stamp, head.commit + '\n')
  console.log(`llama-server built in ${((Date.now() - started) / 1000).toFixed(0)} s from llama.cpp ${head.commit.slice(0, 10)}`)
}
console.log(binary)

// `npm run test:asan [-- more/test-files.js ...]`: builds the addon with sanitizers into build-sanitize/ (the
// normal build/ is untouched; incremental after the first build) and runs the native tests under it, one node
// process per file, then sorts what the sanitizers reported into hearth's code, llama.cpp's and the rest.
//   HEARTH_SANITIZE=address,undefined   the sanitizers (the default)
// node itself is not instrumented, so the sanitizer runtimes are preloaded (LD_PRELOAD) ahead of it. Leaks are
// checked at exit; V8 and node keep allocations alive at exit by design, so only leaks whose allocation comes
// from hearth.node (hearth or llama.cpp code) count. Exits 1 when a test fails, on any AddressSanitizer error,
// on undefined behaviour in hearth's own code (native/), or on a leak from hearth.node.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildAddon } from './install.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sanitize = process.env.HEARTH_SANITIZE || 'address,undefined'
const outDir = join(root, 'build-sanitize')
const logDir = join(outDir, 'logs')
const defaultTests = ['dist/test/01-native-model.test.js', 'dist/test/04-native-faults.test.js', 'dist/test/02-generate.test.js']
const tests = [...defaultTests, ...process.argv.slice(2)]

// 1. the instrumented addon; RelWithDebInfo keeps llama.cpp's release asserts (NDEBUG) and gives source lines
buildAddon(['--out', outDir, '--config', 'RelWithDebInfo', `--CDHEARTH_SANITIZE=${sanitize}`])
const addon = ['RelWithDebInfo', 'Release'].map((c) => join(outDir, c, 'hearth.node')).find(existsSync)
if (!addon) throw new Error(`no hearth.node under ${outDir}`)

// 2. the runtimes it links, preloaded in the same order
const runtimes = execFileSync('ldd', [addon], { encoding: 'utf8' })
  .split('\n')
  .map((l) => /\s(lib(?:asan|ubsan|tsan|lsan)\.so[^\s]*) => (\S+)/.exec(l))
  .filter((m) => m !== null)
  .map((m) => m[2])
if (runtimes.length === 0) throw new Error(`${addon} links no sanitizer runtime: was it built with HEARTH_SANITIZE?`)

rmSync(logDir, { recursive: true, force: true })
mkdirSync(logDir, { recursive: true })
const env = {
  ...process.env,
  HEARTH_ADDON: addon,
  LD_PRELOAD: runtimes.join(':'),
  // the whole report goes to a file per process; exitcode=0 for leaks: they are judged below, not by node's exit
  ASAN_OPTIONS: `log_path=${logDir}/asan:detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=40:allow_user_segv_handler=1`,
  LSAN_OPTIONS: 'exitcode=0:report_objects=0',
  UBSAN_OPTIONS: `log_path=${logDir}/ubsan:print_stacktrace=1:halt_on_error=0`,
}

// 3. the tests, each file in its own process (tap's runner would be instrumented and report node's own leaks)
console.log(`hearth: sanitizers ${sanitize}; addon ${relative(root, addon)}; preloading ${runtimes.join(' ')}`)
const results = []
for (const file of tests) {
  const started = Date.now()
  // instrumented code runs several times slower: tap's 30 s per-file default would cut the longer files short
  const r = spawnSync(process.execPath, ['--enable-source-maps', file], { cwd: root, env: { TAP_TIMEOUT: '1800', ...env }, encoding: 'utf8', maxBuffer: 256 << 20 })
  const totals = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(r.stdout ?? '')
  const ok = r.status === 0
  results.push({ file, ok })
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${file}: exit ${r.status ?? r.signal}, ${totals ? `${totals[2]}/${totals[1]} assertions pass` : 'no tap totals'}, ${((Date.now() - started) / 1000).toFixed(0)} s`)
  if (!ok) console.log(`${(r.stdout ?? '').split('\n').filter((l) => /not ok|Error|error/.test(l)).slice(0, 40).join('\n')}\n${(r.stderr ?? '').slice(-4000)}`)
}

// 4. what the sanitizers said
const where = (text) => (/\/native\/[\w-]+\.(cpp|h)/.test(text) ? 'hearth' : /llama\.cpp\//.test(text) ? 'llama.cpp' : 'other')
const asanErrors = []
const leaks = { hearth: [], 'llama.cpp': [], other: 0 }
const ub = new Map()
for (const name of readdirSync(logDir)) {
  const text = readFileSync(join(logDir, name), 'utf8')
  for (const report of text.split(/(?==+\n==\d+==ERROR: )/)) {
    if (/ERROR: AddressSanitizer/.test(report)) asanErrors.push(report.trim())
  }
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
    // the first frame past the allocator says whose allocation it is
    const frames = block.split('\n').filter((l) => /^\s+#\d+ /.test(l))
    const at = frames.findIndex((l) => !/libsanitizer|lib(asan|ubsan|lsan|stdc\+\+|c)\.so|in (malloc|calloc|realloc|operator new)/.test(l))
    let owner = frames[at] ?? ''
    // N-API allocates on its caller's behalf: what napi_create_external and napi_wrap hold is freed when V8
    // collects the object (never at exit: node's), anything else (promises, references) when the caller says
    if (/in napi_/.test(owner)) owner = /in napi_(create_external|wrap)\b/.test(owner) ? '' : (frames.slice(at + 1).find((l) => !/napi-inl\.h|in napi_/.test(l)) ?? '')
    const whose = where(owner)
    if (whose !== 'other' || owner.includes('hearth.node')) leaks[whose === 'hearth' ? 'hearth' : 'llama.cpp'].push(block.split('\n').slice(0, 14).join('\n'))
    else leaks.other++
  }
  for (const m of text.matchAll(/^(\S+:\d+:\d+): runtime error: (.*)$/gm)) {
    const key = `${m[1]}: ${m[2]}`
    ub.set(key, (ub.get(key) ?? 0) + 1)
  }
}
const ubBy = { hearth: [], 'llama.cpp': [], other: [] }
for (const [key, n] of ub) ubBy[where(key)].push(`${key} (${n}x)`)

console.log('\n== sanitizer findings')
console.log(`AddressSanitizer errors: ${asanErrors.length}`)
for (const r of asanErrors) console.log(r.split('\n').slice(0, 40).join('\n'))
console.log(`undefined behaviour in hearth (native/): ${ubBy.hearth.length}`)
for (const l of ubBy.hearth) console.log(`  ${l}`)
console.log(`undefined behaviour in llama.cpp/ggml (reported, not patched): ${ubBy['llama.cpp'].length}`)
for (const l of ubBy['llama.cpp']) console.log(`  ${l}`)
if (ubBy.other.length) console.log(`undefined behaviour elsewhere: ${ubBy.other.join('; ')}`)
console.log(`leaks allocated by hearth code: ${leaks.hearth.length}; by llama.cpp/ggml: ${leaks['llama.cpp'].length}; by node/V8 at exit (ignored): ${leaks.other}`)
for (const b of [...leaks.hearth, ...leaks['llama.cpp']]) console.log(b)
console.log(`logs: ${relative(root, logDir)}/`)

const failed = results.some((r) => !r.ok) || asanErrors.length > 0 || ubBy.hearth.length > 0 || leaks.hearth.length > 0
console.log(failed ? 'test:asan: FAILED' : 'test:asan: clean')
process.exit(failed ? 1 : 0)

// `npm run bench`: makes sure the benchmark model and the peer llama-server exist, runs every scenario in a
// fresh Node process (a scenario's leftovers, such as worker threads or a warmed-up JIT, never reach the
// next), and writes bench/results/latest.md from the scenarios' JSON.
//   node dist/bench/run-all.js [--quick] [--only single-stream,concurrency] [--rounds N] [--reps N]
//        [--threads N] [--model PATH | --model-shape S --model-type T] [--llama-server PATH]
//   node dist/bench/run-all.js --report   (latest.md again from the JSON files there, e.g. after --only reruns)
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { PASSED_ON_OPTIONS, resolveBenchModel } from './harness/options.js'
import { buildLlamaServerScript, distBench, repoRoot, resultsDir } from './harness/paths.js'
import { latestMarkdown } from './harness/report.js'
import { ensureProjector } from './make-projector.js'
import type { ScenarioResult } from './harness/result.js'

/** In the order they run; http-overhead serves the built-in tiny model, the rest the benchmark model (images with its projector). */
const SCENARIOS = ['single-stream', 'prompt-processing', 'concurrency', 'shared-prefix', 'http-overhead', 'high-concurrency', 'multi-turn', 'images'] as const
type Scenario = (typeof SCENARIOS)[number]

const log = (msg: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)} run-all] ${msg}\n`)

const { values } = parseArgs({
  options: {
    ...PASSED_ON_OPTIONS,
    only: { type: 'string' },
    'llama-server': { type: 'string' },
    report: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  console.log('node dist/bench/run-all.js [--quick] [--only a,b] [--rounds N] [--reps N] [--threads N] ' +
    '[--model PATH | --model-shape S --model-type T] [--llama-server PATH] | --report\nscenarios: ' + SCENARIOS.join(', '))
  process.exit(0)
}
const selected: Scenario[] = values.only
  ? values.only.split(',').map((s) => {
      const name = SCENARIOS.find((x) => x === s.trim())
      if (!name) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`)
      return name
    })
  : [...SCENARIOS]

/** Runs `node args` with inherited stdio; resolves with its exit code. */
function runNode(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'inherit' })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
  })
}

/** Builds (or reuses) llama-server; the script prints the binary's path last. */
function ensureLlamaServer(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [buildLlamaServerScript], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString()
      process.stderr.write(b)
    })
    child.on('exit', (code) => {
      const path = out.trim().split('\n').pop()?.trim() ?? ''
      if (code === 0 && existsSync(path)) resolve(path)
      else reject(new Error(`building llama-server failed (exit code ${code})`))
    })
  })
}

function readResult(scenario: Scenario): ScenarioResult | null {
  const file = join(resultsDir, `${scenario}.json`)
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult) : null
}

function writeLatest(results: ScenarioResult[], timing: string, failed: string[]): void {
  mkdirSync(resultsDir, { recursive: true })
  const latest = join(resultsDir, 'latest.md')
  writeFileSync(latest, latestMarkdown(results, timing, failed))
  log(`wrote ${latest}; ${timing}${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`)
}

if (values.report) {
  const results = SCENARIOS.map(readResult).filter((r): r is ScenarioResult => r !== null)
  const seconds = results.reduce((s, r) => s + r.durationSeconds, 0)
  writeLatest(results, `scenario run times add up to ${(seconds / 60).toFixed(1)} min (assembled from the JSON files)`, [])
  process.exit(0)
}

const startedAt = Date.now()
const needsBenchModel = selected.some((s) => s !== 'http-overhead')
const benchModel = needsBenchModel
  ? await resolveBenchModel({ model: values.model ?? null, modelShape: values['model-shape'], modelType: values['model-type'] })
  : null
// made here rather than inside the scenario so that a failure to write it shows before any scenario runs
const projector = selected.includes('images') ? await ensureProjector() : null
const llamaServer = values['llama-server'] ?? (await ensureLlamaServer())
log(`benchmark model ${benchModel ?? '(none needed)'}${projector ? `, projector ${projector}` : ''}, peer ${llamaServer}`)

const common = [
  '--llama-server', llamaServer, '--out', resultsDir,
  ...(values.quick ? ['--quick'] : []),
  ...(values.rounds ? ['--rounds', values.rounds] : []),
  ...(values.reps ? ['--reps', values.reps] : []),
  ...(values.threads ? ['--threads', values.threads] : []),
]
const results: ScenarioResult[] = []
const failed: string[] = []
for (const scenario of selected) {
  const t0 = Date.now()
  log(`scenario ${scenario}`)
  const modelArgs = scenario === 'http-overhead' ? [] : ['--model', benchModel!]
  const code = await runNode([join(distBench, 'scenarios', `${scenario}.js`), ...modelArgs, ...common])
  const result = readResult(scenario)
  // a stale file from an earlier run must not pass for this run's result
  if (code === 0 && result && Date.parse(result.date) >= t0) {
    results.push(result)
    log(`scenario ${scenario} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  } else {
    failed.push(scenario)
    log(`scenario ${scenario} FAILED (exit code ${code})`)
  }
}

writeLatest(results, `total run time ${((Date.now() - startedAt) / 60_000).toFixed(1)} min`, failed)
process.exitCode = failed.length ? 1 : 0

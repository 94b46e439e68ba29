// `npm run fuzz -- [options]`: fuzzes every endpoint of a real server and exits non-zero on any failure.
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ENDPOINTS, type EndpointName } from './endpoints.js'
import { KNOWN_FAILURES, REPORTED_FAILURES } from './known-failures.js'
import { DEFAULT_OPTIONS, runFuzz } from './runner.js'
import { formatReport } from './summary.js'

const USAGE = `Usage: npm run fuzz -- [options]

Starts hearth (the built-in model unless --model) and sends every endpoint seeded, fuzzed requests; checks that
nothing answers 5xx, every error is OpenAI-shaped with a fitting 4xx, the process never exits, and no sequence
is left active or queued. Prints a summary with a minimal reproducer per failure; exits 1 on any failure.

  --seed N            seed of the run (default ${DEFAULT_OPTIONS.seed})
  --count N           cases per endpoint (default ${DEFAULT_OPTIONS.count})
  --endpoint LIST     comma-separated, of: ${ENDPOINTS.join(', ')} (default all)
  --concurrency N     cases in flight at once (default 1; above 1, 429/503 with Retry-After count as fitting)
  --timeout-ms N      per request (default ${DEFAULT_OPTIONS.timeoutMs})
  --skip-known        do not send cases of the known and reported failures (test/fuzz/known-failures.ts)
  --no-minimise       report failures as found, without shrinking them
  --model PATH        GGUF model to serve (default the built-in one)
  --ctx N --parallel N --max-queue N --body-limit BYTES   the server's limits (defaults ${DEFAULT_OPTIONS.ctx}, ${DEFAULT_OPTIONS.parallel}, ${DEFAULT_OPTIONS.maxQueue}, ${DEFAULT_OPTIONS.bodyLimit})
  --out DIR           write report.json there, and bodies too long to print
  --quiet             no progress lines
`

function int(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback
  const v = Number(raw)
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${raw}`)
  return v
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    count: { type: 'string' },
    endpoint: { type: 'string' },
    concurrency: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'skip-known': { type: 'boolean', default: false },
    'no-minimise': { type: 'boolean', default: false },
    model: { type: 'string' },
    ctx: { type: 'string' },
    parallel: { type: 'string' },
    'max-queue': { type: 'string' },
    'body-limit': { type: 'string' },
    out: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const endpoints = values.endpoint?.split(',').map((s) => s.trim()) ?? [...ENDPOINTS]
for (const e of endpoints) {
  if (!(ENDPOINTS as readonly string[]).includes(e)) throw new Error(`--endpoint: unknown ${e}; one of ${ENDPOINTS.join(', ')}`)
}
const report = await runFuzz({
  seed: int('seed', values.seed, DEFAULT_OPTIONS.seed, 0),
  count: int('count', values.count, DEFAULT_OPTIONS.count),
  endpoints: endpoints as EndpointName[],
  concurrency: int('concurrency', values.concurrency, 1),
  timeoutMs: int('timeout-ms', values['timeout-ms'], DEFAULT_OPTIONS.timeoutMs),
  skip: values['skip-known'] ? [...KNOWN_FAILURES, ...REPORTED_FAILURES] : [],
  minimise: !values['no-minimise'],
  ...(values.model ? { modelPath: values.model } : {}),
  ctx: int('ctx', values.ctx, DEFAULT_OPTIONS.ctx),
  parallel: int('parallel', values.parallel, DEFAULT_OPTIONS.parallel),
  maxQueue: int('max-queue', values['max-queue'], DEFAULT_OPTIONS.maxQueue, 0),
  bodyLimit: int('body-limit', values['body-limit'], DEFAULT_OPTIONS.bodyLimit),
  log: values.quiet ? () => {} : (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
})
const out = values.out ?? null
console.log(formatReport(report, out))
if (out) {
  mkdirSync(out, { recursive: true })
  const file = `${out}/report.json`
  // Buffer.toJSON runs before a replacer sees the value: raw bodies arrive as { type: 'Buffer', data }
  const replacer = (k: string, v: unknown) => {
    if (k === 'window' && Array.isArray(v)) return `${v.length} cases`
    const b = v as { type?: unknown; data?: unknown }
    return b && b.type === 'Buffer' && Array.isArray(b.data) ? { base64: Buffer.from(b.data as number[]).toString('base64') } : v
  }
  writeFileSync(file, JSON.stringify(report, replacer, 1))
  console.log(`\nwrote ${file}`)
}
process.exit(report.groups.length ? 1 : 0)

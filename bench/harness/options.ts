// Flags every scenario understands (run-all passes them through), and how the model to serve is chosen:
// an explicit --model, or the random-weight model of --model-shape/--model-type created on first use.
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { defaultLlamaServer, resultsDir, tinyModelPath } from './paths.js'

export interface ScenarioOptions {
  quick: boolean
  rounds: number
  /** --rounds was given (a long scenario may default to fewer rounds) */
  roundsGiven: boolean
  /** measured requests per server and round, where a scenario repeats requests */
  reps: number | null
  threads: number
  model: string | null
  modelShape: string
  modelType: string
  llamaServer: string
  out: string
  /** scenario-specific overrides; null = the scenario's default */
  promptTokens: number | null
  genTokens: number | null
  levels: number[] | null
  bandwidth: boolean
}

export const OPTION_HELP = `Options shared by every scenario:
  --quick               fewer repetitions and shorter runs (a smoke test of the harness)
  --rounds N            rounds per server, alternating hearth / llama-server (default 2, at least 1)
  --reps N              measured requests per round where the scenario repeats them
  --threads N           threads for both servers (default: number of CPUs)
  --model PATH          serve this GGUF file instead of the benchmark model
  --model-shape S       qwen2.5-0.5b | llama-3.2-1b (default qwen2.5-0.5b)
  --model-type T        f16 | q8_0 | q4_0 (default q8_0)
  --llama-server PATH   llama-server binary (default bench/llama-server-build/bin/llama-server)
  --out DIR             where result JSON goes (default bench/results)
  --prompt-tokens N, --gen-tokens N, --levels 1,4,16,64   scenario overrides
  --no-bandwidth        single-stream: skip the memory bandwidth measurement`

function positive(name: string, raw: string | undefined): number | null {
  if (raw === undefined) return null
  const v = Number(raw)
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`)
  return v
}

/** The flags run-all also takes and passes on to every scenario, with their defaults. */
export const PASSED_ON_OPTIONS = {
  quick: { type: 'boolean', default: false },
  rounds: { type: 'string' },
  reps: { type: 'string' },
  threads: { type: 'string' },
  model: { type: 'string' },
  'model-shape': { type: 'string', default: 'qwen2.5-0.5b' },
  'model-type': { type: 'string', default: 'q8_0' },
} as const

export function parseScenarioOptions(argv: string[] = process.argv.slice(2)): ScenarioOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...PASSED_ON_OPTIONS,
      'llama-server': { type: 'string', default: defaultLlamaServer },
      out: { type: 'string', default: resultsDir },
      'prompt-tokens': { type: 'string' },
      'gen-tokens': { type: 'string' },
      levels: { type: 'string' },
      'no-bandwidth': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(OPTION_HELP)
    process.exit(0)
  }
  const levels = values.levels?.split(',').map((s) => positive('levels', s.trim())!) ?? null
  return {
    quick: values.quick,
    rounds: positive('rounds', values.rounds) ?? 2,
    roundsGiven: values.rounds !== undefined,
    reps: positive('reps', values.reps),
    threads: positive('threads', values.threads) ?? availableParallelism(),
    model: values.model ?? null,
    modelShape: values['model-shape'],
    modelType: values['model-type'],
    llamaServer: values['llama-server'],
    out: values.out,
    promptTokens: positive('prompt-tokens', values['prompt-tokens']),
    genTokens: positive('gen-tokens', values['gen-tokens']),
    levels,
    bandwidth: !values['no-bandwidth'],
  }
}

/** The benchmark model: --model, or the random-weight model in the requested shape (made when missing). */
export async function resolveBenchModel(o: Pick<ScenarioOptions, 'model' | 'modelShape' | 'modelType'>): Promise<string> {
  if (o.model) return o.model
  // loaded only when needed: make-model pulls in the native addon to quantize
  const { ensureModel, MODEL_TYPES, SHAPE_IDS } = await import('../make-model.js')
  const shape = SHAPE_IDS.find((s) => s === o.modelShape)
  const type = MODEL_TYPES.find((t) => t === o.modelType)
  if (!shape) throw new Error(`--model-shape must be one of ${SHAPE_IDS.join(', ')}`)
  if (!type) throw new Error(`--model-type must be one of ${MODEL_TYPES.join(', ')}`)
  return ensureModel(shape, type)
}

/** The HTTP-overhead scenario serves the built-in tiny model unless --model says otherwise. */
export function resolveTinyModel(o: ScenarioOptions): string {
  return o.model ?? tinyModelPath
}

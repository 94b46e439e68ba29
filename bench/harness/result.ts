// The one result shape every scenario writes to bench/results/<scenario>.json, and the two ways it is shown:
// a console table and a markdown table. Each metric is the BEST of its samples (one sample per measured
// request or per round, as the scenario says): on a shared machine other work only ever slows a run down, so
// the best run is the one closest to what the server can do, and one disturbed run out of two cannot flip a
// comparison the way it flips a median. Medians are kept in the JSON too. Ratios are hearth / llama-server.
import { mkdirSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { gitCommit, machineInfo, type MachineInfo } from './machine.js'
import { resultsDir } from './paths.js'
import { SERVER_KINDS, type ServerKind } from './servers.js'
import { median } from './stats.js'

export interface MetricInfo {
  key: string
  label: string
  unit: string
  /** which direction wins; null for counts that are reported, not compared */
  better: 'higher' | 'lower' | null
}

export interface ModelInfo {
  file: string
  path: string
  fileBytes: number
  /** weight bytes one decode step streams from memory */
  weightBytesPerToken: number
}

export type Settings = Record<string, number | string | boolean | number[]>

export interface ScenarioResult {
  scenario: string
  title: string
  date: string
  commit: string
  machine: MachineInfo
  model: ModelInfo
  settings: Settings
  /** the exact command lines the servers ran with */
  serverCommands: Record<ServerKind, string>
  aggregation: string
  metricInfo: MetricInfo[]
  /** best sample per metric (max where higher is better, min where lower is better, median for counts) */
  metrics: Record<ServerKind, Record<string, number>>
  medians: Record<ServerKind, Record<string, number>>
  /** hearth / llama-server per metric, from `metrics` */
  ratios: Record<string, number>
  samples: Record<ServerKind, Record<string, number[]>>
  /** single values that belong to no server (bandwidth, bounds) */
  extra: Record<string, number | string>
  notes: string[]
  durationSeconds: number
}

export type Samples = Record<ServerKind, Record<string, number[]>>

export function emptySamples(): Samples {
  return { hearth: {}, 'llama-server': {} }
}

export function addSample(samples: Samples, kind: ServerKind, key: string, value: number): void {
  ;(samples[kind][key] ??= []).push(value)
}

export interface ResultInput {
  scenario: string
  title: string
  model: ModelInfo
  settings: Settings
  serverCommands: Record<ServerKind, string>
  aggregation: string
  metricInfo: MetricInfo[]
  samples: Samples
  extra?: Record<string, number | string>
  notes?: string[]
  startedAt: number
}

export const AGGREGATION = 'best of all samples per server (max for higher-is-better, min for lower-is-better)'

function best(m: MetricInfo, xs: number[]): number {
  if (xs.length === 0) return NaN
  if (m.better === 'higher') return Math.max(...xs)
  if (m.better === 'lower') return Math.min(...xs)
  return median(xs)
}

export function buildResult(input: ResultInput): ScenarioResult {
  const metrics: Record<ServerKind, Record<string, number>> = { hearth: {}, 'llama-server': {} }
  const medians: Record<ServerKind, Record<string, number>> = { hearth: {}, 'llama-server': {} }
  const ratios: Record<string, number> = {}
  for (const m of input.metricInfo) {
    for (const kind of SERVER_KINDS) {
      metrics[kind][m.key] = best(m, input.samples[kind][m.key] ?? [])
      medians[kind][m.key] = median(input.samples[kind][m.key] ?? [])
    }
    ratios[m.key] = metrics.hearth[m.key]! / metrics['llama-server'][m.key]!
  }
  return {
    scenario: input.scenario,
    title: input.title,
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: machineInfo(),
    model: input.model,
    settings: input.settings,
    serverCommands: input.serverCommands,
    aggregation: input.aggregation,
    metricInfo: input.metricInfo,
    metrics,
    medians,
    ratios,
    samples: input.samples,
    extra: input.extra ?? {},
    notes: input.notes ?? [],
    durationSeconds: Math.round((Date.now() - input.startedAt) / 1000),
  }
}

export function writeResult(r: ScenarioResult, dir: string = resultsDir): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${r.scenario}.json`)
  writeFileSync(path, JSON.stringify(r, null, 2) + '\n')
  return path
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '-'
  const a = Math.abs(v)
  if (a >= 1000) return v.toFixed(0)
  if (a >= 100) return v.toFixed(1)
  if (a >= 10) return v.toFixed(2)
  return v.toFixed(3)
}

/** differences inside this band are within the run-to-run noise of a shared 2-core VM */
const TIE = 0.03

function winner(m: MetricInfo, ratio: number): string {
  if (m.better === null || !Number.isFinite(ratio)) return ''
  if (Math.abs(ratio - 1) <= TIE) return 'tie (±3%)'
  const hearthAhead = m.better === 'higher' ? ratio > 1 : ratio < 1
  return hearthAhead ? 'hearth' : 'llama-server'
}

/** [metric, hearth, llama-server, ratio, better] per metric, formatted */
export function metricRows(r: ScenarioResult): string[][] {
  return r.metricInfo.map((m) => {
    const direction = m.better === null ? '' : m.better === 'higher' ? ', higher is better' : ', lower is better'
    const ratio = r.ratios[m.key]!
    return [
      `${m.label} (${m.unit}${direction})`,
      formatNumber(r.metrics.hearth[m.key]!),
      formatNumber(r.metrics['llama-server'][m.key]!),
      m.better === null ? '' : formatNumber(ratio),
      winner(m, ratio),
    ]
  })
}

export const HEADER = ['metric', 'hearth', 'llama-server', 'hearth/llama-server', 'better']

export function consoleTable(r: ScenarioResult): string {
  const all = [HEADER, ...metricRows(r)]
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => row[i]!.length)))
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const out = [`== ${r.title} ==`, `model ${r.model.file}; ${r.aggregation}`, line(HEADER), ...all.slice(1).map(line)]
  for (const [k, v] of Object.entries(r.extra)) out.push(`${k}: ${typeof v === 'number' ? formatNumber(v) : v}`)
  for (const n of r.notes) out.push(`note: ${n}`)
  return out.join('\n')
}

export function markdownTable(r: ScenarioResult): string {
  const out = [`| ${HEADER.join(' | ')} |`, `|${HEADER.map((_, i) => (i === 0 || i === HEADER.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`]
  for (const row of metricRows(r)) out.push(`| ${row.join(' | ')} |`)
  return out.join('\n')
}

export function modelLabel(path: string): string {
  return basename(path)
}

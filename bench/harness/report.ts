// bench/results/latest.md: every scenario of a run in one markdown table, with the machine, commit and
// settings above it and each scenario's extra figures and notes below, ready to paste into RESULTS.md.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { machineInfo } from './machine.js'
import { llamaServerBuildDir } from './paths.js'
import { formatNumber, HEADER, metricRows, type ScenarioResult } from './result.js'

function peerCommit(): string {
  const stamp = join(llamaServerBuildDir, 'llama-server.commit')
  return existsSync(stamp) ? readFileSync(stamp, 'utf8').trim().slice(0, 10) : 'unknown'
}

/** `timing`: a line on how long the run took */
export function latestMarkdown(results: ScenarioResult[], timing: string, failed: string[]): string {
  const m = results[0]?.machine ?? machineInfo()
  const date = (results.map((r) => r.date).sort().pop() ?? new Date().toISOString()).slice(0, 16).replace('T', ' ')
  const commits = [...new Set(results.map((r) => r.commit))].join(', ')
  const models = [...new Set(results.map((r) => `${r.model.file} (${(r.model.fileBytes / 1e6).toFixed(0)} MB)`))].join(', ')
  const out: string[] = [
    `## hearth vs llama-server, ${date} UTC`,
    '',
    `- machine: ${m.cpu}, ${m.cores} CPUs, ${m.memoryGB} GB RAM, ${m.platform}, Node ${m.node}`,
    `- hearth commit: ${commits}; llama-server: same deps/llama.cpp (${peerCommit()}), same CPU build flags`,
    `- models: ${models}`,
    `- both servers: ${m.cores} threads unless stated, batch/ubatch 512, unified KV of the same size, flash attention auto, ` +
      'temperature 0.8 / top_k 40 / top_p 0.95 / min_p 0.05, ignore_eos (every request generates exactly max_tokens)',
    `- method: hearth and llama-server alternate (fresh process each round), over HTTP with streaming; ` +
      `each figure is the best of all samples (max where higher is better, min where lower is better); medians are in the JSON files`,
    `- ${timing}`,
    '',
    `| scenario | ${HEADER.join(' | ')} |`,
    `| --- |${HEADER.map((_, i) => (i === 0 || i === HEADER.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`,
  ]
  for (const r of results) {
    metricRows(r).forEach((row, i) => out.push(`| ${i === 0 ? r.title : ''} | ${row.join(' | ')} |`))
  }
  for (const r of results) {
    const lines = [
      ...Object.entries(r.extra).map(([k, v]) => `- ${k}: ${typeof v === 'number' ? formatNumber(v) : v}`),
      ...r.notes.map((n) => `- ${n}`),
    ]
    if (lines.length) out.push('', `**${r.title}** (${r.model.file}, ${r.durationSeconds} s)`, '', ...lines)
  }
  if (failed.length) out.push('', `**Failed scenarios:** ${failed.join(', ')}`)
  return out.join('\n') + '\n'
}

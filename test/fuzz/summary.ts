// The report a person reads: per endpoint what was sent and how it was answered, then one entry per failure
// kind with how often it happened and a minimal reproducer.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FuzzCase } from './fuzz-case.js'
import { bodyExpr, bytesExpr, MAX_EXPR } from './repro.js'
import type { FailureGroup, FuzzReport } from './runner.js'

/** The body as a JS expression; long ones go to a file under `outDir` when one is given. */
function bodyLine(c: FuzzCase, outDir: string | null, name: string): string {
  if (c.body === null) return 'no body'
  const expr = Buffer.isBuffer(c.body) ? bytesExpr(c.body) : bodyExpr(c.body)
  if (expr.length <= MAX_EXPR) return `body = ${expr}`
  if (!outDir) return `body = ${expr.slice(0, 400)}... (${expr.length} characters; run with --out DIR to save it)`
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `${name}.body`)
  writeFileSync(file, Buffer.isBuffer(c.body) ? c.body : Buffer.from(expr))
  return Buffer.isBuffer(c.body) ? `body = require('fs').readFileSync(${JSON.stringify(file)})` : `body = eval(require('fs').readFileSync(${JSON.stringify(file)}, 'utf8'))`
}

/** Method, path, headers, how the client walks away, and the body. */
export function reproducer(c: FuzzCase, outDir: string | null = null, name = c.id.replace(/[^\w-]/g, '_')): string[] {
  const head = [`${c.method} ${c.path.length > 200 ? `${c.path.slice(0, 200)}... (${c.path.length} chars)` : c.path}`]
  if (c.contentType !== null) head.push(`content-type: ${c.contentType}`)
  for (const [k, v] of Object.entries(c.headers)) head.push(`${k}: ${v.length > 60 ? `'${v[0]}' x ${v.length}` : v}`)
  if (c.abort) head.push(`client walks away ${c.abort.at === 'after-bytes' ? `after ${c.abort.bytes} response bytes` : c.abort.at}`)
  return [head.join('  |  '), bodyLine(c, outDir, name)]
}

function statusText(s: Record<string, number>): string {
  return Object.entries(s)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}:${v}`)
    .join(' ')
}

function groupTitle(g: FailureGroup): string {
  const f = g.failure
  const status = f.status === null ? '' : ` ${f.status}`
  return `${f.kind}${status}${f.code ? ` ${f.code}` : ''} on ${g.first.endpoint}: ${f.detail.split('\n')[0]!.slice(0, 300)}`
}

export function formatReport(r: FuzzReport, outDir: string | null = null): string {
  const out: string[] = []
  const o = r.options
  out.push(
    `hearth fuzz: seed ${o.seed}, ${o.count} cases per endpoint, concurrency ${o.concurrency}, ${(r.durationMs / 1000).toFixed(0)} s, ` +
      `${r.restarts} server restart(s)${o.skip.length ? `, skipping known: ${o.skip.join('; ')}` : ''}`,
    `server: hearth serve ${r.serverArgs.join(' ')}`,
    '',
    `${'endpoint'.padEnd(18)}${'sent'.padStart(6)}${'skipped'.padStart(9)}${'failed'.padStart(8)}  statuses`,
  )
  for (const [e, s] of Object.entries(r.stats)) {
    out.push(`${e.padEnd(18)}${String(s.sent).padStart(6)}${String(s.skipped).padStart(9)}${String(s.failures).padStart(8)}  ${statusText(s.statuses)}`)
  }
  out.push('')
  if (r.groups.length === 0) {
    out.push('no failures')
    return out.join('\n')
  }
  out.push(`${r.groups.length} kind(s) of failure:`)
  r.groups.forEach((g, i) => {
    out.push('', `[${i + 1}] ${groupTitle(g)}`)
    out.push(`    ${g.count} case(s): ${g.caseIds.join(', ')}${g.count > g.caseIds.length ? ', ...' : ''}`)
    out.push(`    first: ${g.first.id} (${g.first.kind}) ${g.first.label.slice(0, 300)}`)
    if (g.failure.kind === 'crash') {
      out.push(`    crashes a fresh server alone: ${g.alone === null ? 'not tried' : g.alone ? 'yes' : 'no'}${!g.alone && g.previous ? ` (the case before it: ${g.previous.id} ${g.previous.label.slice(0, 120)})` : ''}`)
    }
    if (g.failure.kind === 'leak') {
      out.push(`    ${g.alone ? `leaks alone on a fresh server: ${g.minimal.id}` : `no single case of the ${g.window?.length ?? 0} since the last clean check leaks alone`}`)
    }
    const minimal = g.minimal !== g.first ? 'minimal reproducer' : 'reproducer'
    out.push(`    ${minimal}:`)
    for (const line of reproducer(g.minimal, outDir, `failure-${i + 1}`)) out.push(`      ${line}`)
  })
  return out.join('\n')
}

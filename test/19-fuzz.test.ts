// A short seeded fuzz run against the real server (test/fuzz/): every endpoint gets 60 hostile requests, and
// no answer may be a 5xx, an error that is not OpenAI-shaped with a fitting 4xx, a broken 200 or stream; the
// process must never exit, no sequence may be left active or queued, and SIGTERM must still drain cleanly.
// `npm run fuzz` is the long run. Cases of KNOWN_FAILURES and REPORTED_FAILURES (test/fuzz/known-failures.ts)
// are skipped until their fixes land.
import t from 'tap'
import { makeCase, plan } from './fuzz/cases.js'
import { ENDPOINTS, isPost, type FuzzContext } from './fuzz/endpoints.js'
import { serialize } from './fuzz/fuzz-value.js'
import { KNOWN_FAILURES, REPORTED_FAILURES } from './fuzz/known-failures.js'
import { bodyExpr } from './fuzz/repro.js'
import { Rng } from './fuzz/rng.js'
import { runFuzz } from './fuzz/runner.js'
import { formatReport } from './fuzz/summary.js'

const COUNT = 60

t.test('a reproducer evaluates to the exact body it stands for', async (t) => {
  const ctx: FuzzContext = { modelId: 'm', nVocab: 1024, nEmbd: 192, nCtx: 256, bodyLimit: 2 ** 21, responseIds: ['resp_0'] }
  let checked = 0
  for (const e of ENDPOINTS.filter(isPost)) {
    const rng = new Rng(7)
    plan(rng, e, 100).forEach((slot, i) => {
      const c = makeCase(rng, ctx, e, slot, i)
      if (c.body === null || Buffer.isBuffer(c.body)) return
      const expr = bodyExpr(c.body)
      const text = new Function(`return (${expr})`)() as string
      if (text !== serialize(c.body)) t.fail(`${c.id} ${c.label}: the reproducer does not give the body back`)
      checked++
    })
  }
  t.ok(checked > 250, `${checked} bodies round-tripped`)
})

t.test(`fuzz: ${COUNT} cases per endpoint`, async (t) => {
  const report = await runFuzz({ seed: 19, count: COUNT, skip: [...KNOWN_FAILURES, ...REPORTED_FAILURES] })
  t.comment(formatReport(report))
  for (const e of ENDPOINTS) {
    const s = report.stats[e]!
    t.equal(s.sent + s.skipped, COUNT, `${e}: every case sent or skipped as known`)
    if (isPost(e)) {
      // a generator gone wrong (everything malformed) or a server refusing everything would pass unnoticed
      t.ok((s.statuses['200'] ?? 0) > 0 && (s.statuses['400'] ?? 0) > 0, `${e}: both accepted and refused requests (${JSON.stringify(s.statuses)})`)
      t.ok(s.skipped <= COUNT * 0.15, `${e}: the known-failure list skips only its own cases (${s.skipped})`)
    }
  }
  for (const g of report.groups) t.fail(`${g.signature} (${g.count} cases, first ${g.first.id}: ${g.first.label.slice(0, 200)})`)
  t.equal(report.groups.length, 0, 'no failures')
})

// Groups failures that are one bug: the same kind, endpoint, status and code, and for crashes and 5xx the
// same message with the numbers taken out.
import type { Failure } from './check.js'
import type { FuzzCase } from './fuzz-case.js'

/** `GGML_ASSERT(n_tokens <= 512) failed` -> `GGML_ASSERT(n_tokens <= N) failed` */
export function normalise(s: string): string {
  return s
    .replace(/0x[0-9a-f]+/gi, 'X')
    .replace(/\d+/g, 'N')
    .replace(/(resp|msg|chatcmpl|cmpl)[-_][0-9a-f]+/g, '$1_ID')
    .slice(0, 100)
}

/** The line of a crashed server's output (since the case was sent) that says why. */
export function crashLine(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean)
  const at = lines.findLastIndex((l) => /assert|error|fault|abort|terminate|fatal|exception|overflow|panic|killed/i.test(l))
  if (at < 0) return lines.length ? lines.at(-1)! : 'no message'
  // "terminate called after throwing ..." says what() on the next line
  const next = lines[at + 1]
  return next?.startsWith('what()') ? `${lines[at]} ${next}` : lines[at]!
}

export function signature(c: FuzzCase, f: Failure): string {
  let detail = ''
  if (f.kind === 'crash' || f.kind === '5xx' || f.kind === 'error-shape' || f.kind === 'stream' || f.kind === 'bad-200') detail = normalise(f.detail)
  if (f.kind === 'unfit-status') detail = c.targeted ?? c.kind
  return [f.kind, c.endpoint, f.status ?? '-', f.code ?? '-', detail].join('|')
}

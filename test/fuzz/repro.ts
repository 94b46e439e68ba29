// Reproducers: a failing body as a short JavaScript expression that evaluates to its exact text, with long
// repeats folded ('('.repeat(25000)), uniform arrays and maps folded (Array(1000).fill('x')), and deep
// nesting folded, so a 2 MB body prints as one readable line. Longer ones are written to a file instead.
import { containsRaw, isObject, Raw, serialize, write, type FuzzValue } from './fuzz-value.js'

/** expressions longer than this are not printed */
export const MAX_EXPR = 3000

const IDENT = /^[A-Za-z_$][\w$]*$/

/** A JS expression for `s`, runs of a unit of up to 16 characters written as unit.repeat(n). */
export function stringExpr(s: string): string {
  const parts: string[] = []
  let lit = ''
  let i = 0
  let size = 0
  const flush = () => {
    if (lit) parts.push(JSON.stringify(lit))
    size += lit.length
    lit = ''
  }
  while (i < s.length) {
    let bestUnit = 0
    let bestReps = 0
    for (let u = 1; u <= 16 && i + u <= s.length; u++) {
      const unit = s.slice(i, i + u)
      let r = 1
      while (s.startsWith(unit, i + r * u)) r++
      if (r * u >= 40 && r >= 3 && r * u > bestUnit * bestReps) {
        bestUnit = u
        bestReps = r
      }
    }
    if (bestUnit) {
      flush()
      parts.push(`${JSON.stringify(s.slice(i, i + bestUnit))}.repeat(${bestReps})`)
      i += bestUnit * bestReps
    } else {
      lit += s[i]
      i++
      // a long stretch with no repeats will not print: stop early rather than scan megabytes
      if (lit.length + size > MAX_EXPR * 2) return JSON.stringify(s)
    }
  }
  flush()
  return parts.join(' + ') || '""'
}

function chainDepth(v: FuzzValue): { depth: number; key: string | null; leaf: FuzzValue } {
  let depth = 0
  let x = v
  const key = isObject(v) && Object.keys(v).length === 1 ? Object.keys(v)[0]! : null
  for (;;) {
    if (key === null && Array.isArray(x) && x.length === 1) x = x[0]!
    else if (key !== null && isObject(x) && Object.keys(x).length === 1 && Object.hasOwn(x, key)) x = x[key]!
    else break
    depth++
  }
  return { depth, key, leaf: x }
}

function arithmetic(nums: number[]): { a: number; d: number } | null {
  if (nums.length < 8 || !nums.every(Number.isInteger)) return null
  const d = nums[1]! - nums[0]!
  return nums.every((n, i) => n === nums[0]! + i * d) ? { a: nums[0]!, d } : null
}

const progression = (a: number, d: number, n: number) =>
  `Array.from({ length: ${n} }, (_, i) => ${d === 0 ? `${a}` : a === 0 ? `i${d === 1 ? '' : ` * ${d}`}` : `${a} + i${d === 1 ? '' : ` * ${d}`}`})`

/** A JS expression whose value serializes to the same JSON as `v` (which has no Raw). */
export function valueExpr(v: FuzzValue): string {
  if (v instanceof Raw) return v.expr
  if (v === null || typeof v === 'boolean') return String(v)
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
  if (typeof v === 'string') return stringExpr(v)
  const chain = chainDepth(v)
  if (chain.depth >= 8) {
    const open = chain.key === null ? '[' : `{${JSON.stringify(chain.key)}:`
    const close = chain.key === null ? ']' : '}'
    return `JSON.parse(${stringExpr(open.repeat(chain.depth))} + ${JSON.stringify(serialize(chain.leaf))} + ${JSON.stringify(close)}.repeat(${chain.depth}))`
  }
  if (Array.isArray(v)) {
    if (v.length >= 8) {
      const first = serialize(v[0]!)
      if (v.every((x) => serialize(x) === first)) return `Array(${v.length}).fill(${valueExpr(v[0]!)})`
      const ap = v.every((x) => typeof x === 'number') ? arithmetic(v as number[]) : null
      if (ap) return progression(ap.a, ap.d, v.length)
    }
    return `[${v.map(valueExpr).join(', ')}]`
  }
  const keys = Object.keys(v)
  if (keys.length >= 16 && keys.every((k) => /^-?\d+$/.test(k))) {
    const ap = arithmetic(keys.map(Number))
    const first = serialize(v[keys[0]!]!)
    if (ap && keys.every((k) => serialize(v[k]!) === first)) {
      return `Object.fromEntries(${progression(ap.a, ap.d, keys.length)}.map((k) => [k, ${valueExpr(v[keys[0]!]!)}]))`
    }
  }
  const entries = keys.map((k) => {
    const name = k === '__proto__' ? '["__proto__"]' : IDENT.test(k) ? k : JSON.stringify(k)
    return `${name}: ${valueExpr(v[k]!)}`
  })
  return entries.length ? `{ ${entries.join(', ')} }` : '{}'
}

/** A JS expression that evaluates to the exact text of `v` serialized (Raw fragments included). */
export function bodyExpr(v: FuzzValue): string {
  if (!containsRaw(v)) return `JSON.stringify(${valueExpr(v)})`
  const segs: string[] = []
  const out: string[] = []
  write(v, out, (r) => {
    const text = out.splice(0).join('')
    if (text) segs.push(stringExpr(text))
    segs.push(`(${r.expr})`)
  })
  const tail = out.join('')
  if (tail) segs.push(stringExpr(tail))
  return segs.join(' + ')
}

/** For bodies that are not a FuzzValue: text (folded) or bytes (hex). */
export function bytesExpr(body: Buffer): string {
  const text = body.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(body)) return stringExpr(text)
  return `Buffer.from(${JSON.stringify(body.toString('hex'))}, 'hex')`
}

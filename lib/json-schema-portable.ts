// Schemas as clients write them, in the regex subset llama.cpp's converter reads. zod writes its date, time and
// datetime strings with `\d` in their patterns (`z.iso.datetime()` is `format: "date-time"` plus a leap-year-aware
// pattern); the converter knows no `\d` and would accept any string, which a strict schema refuses. `\d` (and
// `\w`) mean fixed ASCII classes in a JSON schema pattern (ECMA-262 without the u flag), so writing them as those
// classes changes nothing the pattern matches and lets the grammar enforce it. Other escapes are left for the
// checks to judge.
import { MAX_SCHEMA_JSON_DEPTH } from './json-schema-limits.js'

/** Keys whose value maps names to schemas: the names are not keywords. */
const NAMED_SCHEMAS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'])
/** Keys whose value is data, not schema. */
const DATA = new Set(['enum', 'const', 'default', 'examples'])

const CLASSES: Record<string, string> = { d: '0-9', w: 'A-Za-z0-9_' }

/** A pattern with `\d` and `\w` written as the character classes they stand for. */
export function portablePattern(pattern: string): string {
  let out = ''
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '\\' && i + 1 < pattern.length) {
      const next = pattern[i + 1]!
      const cls = CLASSES[next]
      out += cls === undefined ? c + next : inClass ? cls : `[${cls}]`
      i++
    } else {
      if (c === '[' && !inClass) inClass = true
      else if (c === ']' && inClass) inClass = false
      out += c
    }
  }
  return out
}

/** The schema with every `pattern` keyword made portable (a copy where one changes; the input is not modified). */
export function portablePatterns<T>(schema: T): T {
  return walk(schema, false, 0) as T
}

function walk(node: unknown, named: boolean, depth: number): unknown {
  // deeper than any schema the checks take (or a cycle): left for them to refuse
  if (depth > MAX_SCHEMA_JSON_DEPTH) return node
  if (Array.isArray(node)) {
    const out = node.map((n) => walk(n, false, depth + 1))
    return out.some((n, i) => n !== node[i]) ? out : node
  }
  if (node === null || typeof node !== 'object') return node
  let out: Record<string, unknown> | null = null
  for (const [k, v] of Object.entries(node)) {
    let next: unknown
    if (named) next = walk(v, false, depth + 1) // a name's value is a schema
    else if (k === 'pattern' && typeof v === 'string') next = portablePattern(v)
    else if (DATA.has(k)) next = v
    else next = walk(v, NAMED_SCHEMAS.has(k), depth + 1)
    if (next !== v) (out ??= { ...(node as Record<string, unknown>) })[k] = next
  }
  return out ?? node
}

// The leaf kinds of llama.cpp's converter (string, with its pattern, and integer): what each reads of a schema,
// what it refuses, and the repetitions it writes into the grammar. Used by lib/json-schema-check.ts.
import type { ErrorCode } from './errors.js'
import type { JsonLoc, JsonObject } from './json-limits.js'
import type { SchemaNode } from './json-schema-graph.js'
import { FORMATS, unknownFormat, type JsonType } from './json-schema-keywords.js'
import { MAX_PATTERN_LENGTH, MAX_PATTERN_NESTED_REPETITION, MAX_REPETITION } from './json-schema-limits.js'
import { analyzePattern } from './json-schema-pattern.js'

/** What a kind reads, and the types its grammar can produce (null: any other keyword next to it is ignored). */
export interface Reading {
  reads: Set<string>
  produces: ReadonlySet<JsonType> | null
  /** why an unread keyword is ignored here, when there is a reason more useful than the kind */
  why?: (keyword: string) => string | undefined
}

/** Throws the HearthError for `keyword` (or the schema itself, when null) at `loc`. */
export type Fail = (code: ErrorCode, loc: JsonLoc | null, keyword: string | null, text: string) => never

const has = (o: JsonObject, k: string): boolean => Object.hasOwn(o, k)

/** A string: the pattern if any, else a known format, else minLength/maxLength (the converter reads only one). */
export function readString(node: SchemaNode, fail: Fail, strict: boolean): Reading {
  node.kind = 'string'
  const v = node.value
  const reads = new Set<string>()
  let why: (k: string) => string | undefined
  if (has(v, 'pattern')) {
    reads.add('pattern')
    checkPattern(node, v.pattern as string, fail, strict)
    why = (k) => (k === 'format' && !FORMATS.has(v.format as string) ? unknownFormat(v.format) : 'next to pattern is ignored (llama.cpp\'s converter uses the pattern)')
  } else if (FORMATS.has(v.format as string)) {
    reads.add('format')
    why = () => 'next to format is ignored (llama.cpp\'s converter uses the format)'
  } else {
    reads.add('minLength').add('maxLength')
    const min = (v.minLength as number | undefined) ?? 0
    const max = v.maxLength as number | undefined
    for (const [k, n] of [['minLength', min], ['maxLength', max ?? 0]] as const) {
      if (n > MAX_REPETITION) fail('unsupported_schema', node.loc, k, `is ${n}, more than the ${MAX_REPETITION} llama.cpp's grammar parser can repeat a character`)
    }
    if (max !== undefined && min > max) fail('invalid_parameter', node.loc, 'minLength', `is greater than maxLength (${max})`)
    node.repetitions = Math.max(min, max ?? 0)
    why = (k) => (k === 'format' ? unknownFormat(v.format) : undefined)
  }
  return { reads, produces: new Set(['string']), why }
}

/** A pattern as the converter would take it: refused when invalid, past a limit, or (strict) not enforced. */
function checkPattern(node: SchemaNode, pattern: string, fail: Fail, strict: boolean): void {
  if (pattern.length > MAX_PATTERN_LENGTH) fail('unsupported_schema', node.loc, 'pattern', `is longer than ${MAX_PATTERN_LENGTH} characters`)
  const verdict = analyzePattern(pattern)
  if (verdict.status === 'invalid') fail('invalid_parameter', node.loc, 'pattern', `is not a valid pattern: ${verdict.reason}`)
  if (verdict.status === 'unsupported') {
    if (strict) fail('unsupported_schema', node.loc, 'pattern', `uses what llama.cpp's converter cannot turn into grammar (${verdict.reason}; it accepts only anchored ^...$ patterns of literals, ., [...] classes, groups, | and quantifiers, without \\d \\w \\s), and it would accept any string instead`)
    return // the converter accepts any string
  }
  const big = verdict.counts.find((c) => c > MAX_REPETITION)
  if (big !== undefined) fail('unsupported_schema', node.loc, 'pattern', `repeats something ${big} times, more than the ${MAX_REPETITION} llama.cpp's grammar parser allows`)
  if (verdict.reversed) fail('invalid_parameter', node.loc, 'pattern', `has ${verdict.reversed}, whose minimum is above its maximum`)
  if (verdict.nestedWeight > MAX_PATTERN_NESTED_REPETITION) {
    fail('unsupported_schema', node.loc, 'pattern', `nests repetitions (at ${verdict.nestedAt}, a product of ${verdict.nestedWeight}) beyond the ${MAX_PATTERN_NESTED_REPETITION} llama.cpp's sampler can track at a reasonable cost per token`)
  }
  if (strict && verdict.jsonUnsafe) {
    fail('unsupported_schema', node.loc, 'pattern', `can match a quote, backslash or control character (at ${verdict.jsonUnsafe}), which llama.cpp's grammar would write into the JSON string unescaped, making the output invalid JSON; use a class that leaves them out, such as [^"\\\\\\x00-\\x1F] for any character`)
  }
  node.repetitions = verdict.counts.reduce((a, b) => a + b, 0)
}

/** An integer: bounds rounded inwards; an exclusive bound counts only without its inclusive one. */
export function readInteger(node: SchemaNode, fail: Fail): Reading {
  node.kind = 'integer'
  const v = node.value
  const reads = new Set<string>()
  const bound = (inclusive: string, exclusive: string, low: boolean): number | null => {
    if (has(v, inclusive)) {
      reads.add(inclusive)
      return low ? Math.ceil(v[inclusive] as number) : Math.floor(v[inclusive] as number)
    }
    if (!has(v, exclusive)) return null
    reads.add(exclusive)
    const x = v[exclusive]
    if (typeof x === 'boolean') fail('unsupported_schema', node.loc, exclusive, `as a boolean (draft 4) needs ${inclusive}, and llama.cpp's converter would ignore it even then; give the bound as a number`)
    return low ? Math.floor(x as number) + 1 : Math.ceil(x as number) - 1
  }
  const lo = bound('minimum', 'exclusiveMinimum', true)
  const hi = bound('maximum', 'exclusiveMaximum', false)
  for (const [k, b] of [[has(v, 'minimum') ? 'minimum' : 'exclusiveMinimum', lo], [has(v, 'maximum') ? 'maximum' : 'exclusiveMaximum', hi]] as const) {
    if (b !== null && Math.abs(b) > Number.MAX_SAFE_INTEGER) {
      fail('unsupported_schema', node.loc, k, `is beyond ±${Number.MAX_SAFE_INTEGER}, which llama.cpp's converter would get wrong (it converts through 64-bit integers)`)
    }
  }
  if (lo !== null && hi !== null && lo > hi) fail('invalid_parameter', node.loc, has(v, 'minimum') ? 'minimum' : 'exclusiveMinimum', `leaves no integer up to the maximum (${hi})`)
  return { reads, produces: new Set(['integer']), why: (k) => (k.startsWith('exclusive') ? `is ignored when ${k === 'exclusiveMinimum' ? 'minimum' : 'maximum'} is also given` : undefined) }
}

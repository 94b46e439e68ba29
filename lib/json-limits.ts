// Size and nesting limits for JSON that comes from the wire, checked before anything recursive touches it:
// V8's JSON.stringify, the jinja renderer and llama.cpp's JSON code (nlohmann's dump, the schema converter)
// all recurse once per nesting level, so a value nested 100,000 deep overflows their stacks. Every walk here
// is iterative (an explicit stack), stops at the first level or byte past the limit, and never recurses.
import { HearthError, type ErrorCode } from './errors.js'

export interface JsonValueLimits {
  /** containers nested inside each other: `1` is depth 0, `[]` depth 1, `[[1]]` depth 2 */
  maxDepth: number
  /** UTF-8 bytes of the value as JSON.stringify writes it */
  maxBytes: number
}

/**
 * Defaults for arbitrary JSON from clients (tool call arguments in history, tool results). 128 levels is far
 * beyond any real tool payload and far below where recursive native JSON code gets near a stack limit
 * (nlohmann's dump measured ~110 bytes of stack per level); 4 MiB is more text than any context window holds
 * (a 128k-token context is about 0.5 MB), so nothing legitimate is refused, and tokenizing it stays cheap.
 */
export const JSON_VALUE_LIMITS: Readonly<JsonValueLimits> = Object.freeze({ maxDepth: 128, maxBytes: 4 * 1024 * 1024 })

/** A position inside a JSON value: its parent and the key or index leading to it. */
export interface JsonLoc {
  readonly parent: JsonLoc | null
  readonly seg: string | number
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** `base.key[0]["odd key"]`: a location named as request parameters are (param + path). */
export function jsonPath(base: string, loc: JsonLoc | null): string {
  const segs: Array<string | number> = []
  for (let l = loc; l; l = l.parent) segs.push(l.seg)
  let out = base
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i]!
    out += typeof s === 'number' ? `[${s}]` : PLAIN_KEY.test(s) ? `${out ? '.' : ''}${s}` : `[${JSON.stringify(s)}]`
  }
  return out
}

export type JsonObject = { [key: string]: JsonValue }
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v)
  if (typeof v === 'object' && v !== null) return `a ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'non-plain'} object`
  return `a ${typeof v}`
}

/** UTF-8 bytes of JSON.stringify(s), without building it when s is plain printable ASCII (most keys and words). */
function jsonStringBytes(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return Buffer.byteLength(JSON.stringify(s))
  }
  return s.length + 2
}

interface Frame {
  value: unknown
  loc: JsonLoc | null
  depth: number
  /** where the copy goes, when copying */
  into: JsonObject | JsonValue[] | null
  key: string | number
}

/**
 * Walks `value` iteratively, refusing what is not JSON (functions, symbols, bigints, non-finite numbers,
 * class instances, `undefined` in arrays; `undefined` object members are skipped, as JSON.stringify skips
 * them) and stopping at the first place past a limit. Returns a fresh plain copy when `copy` is set, so
 * that later checks see a tree (no object shared by two places, no cycles) exactly as JSON.stringify
 * would serialize it.
 */
function walk(value: unknown, param: string, limits: JsonValueLimits, code: ErrorCode, copy: boolean): JsonValue {
  let bytes = 0
  const tooBig = (): HearthError =>
    new HearthError(code, `${param} is larger than ${limits.maxBytes} bytes as JSON`, param)
  const root: { v: JsonValue } = { v: null }
  const stack: Frame[] = [{ value, loc: null, depth: 0, into: null, key: 0 }]
  while (stack.length) {
    const f = stack.pop()!
    const v = f.value
    let out: JsonValue
    if (v === null) {
      bytes += 4
      out = null
    } else if (typeof v === 'boolean') {
      bytes += v ? 4 : 5
      out = v
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        const at = jsonPath(param, f.loc)
        throw new HearthError('invalid_parameter', `${at} is ${v}, which JSON cannot hold`, at)
      }
      bytes += String(v).length
      out = v
    } else if (typeof v === 'string') {
      // each UTF-16 unit is at least one byte, so a string this long is over before escaping it
      if (v.length > limits.maxBytes) throw tooBig()
      bytes += jsonStringBytes(v)
      out = v
    } else if (typeof v === 'object') {
      const depth = f.depth + 1
      if (depth > limits.maxDepth) {
        const at = jsonPath(param, f.loc)
        throw new HearthError(code, `${at} is nested deeper than ${limits.maxDepth} levels`, at)
      }
      if (Array.isArray(v)) {
        bytes += 2 + Math.max(0, v.length - 1)
        const arr: JsonValue[] = copy ? new Array<JsonValue>(v.length).fill(null) : []
        for (let i = v.length - 1; i >= 0; i--) {
          const item: unknown = v[i]
          if (item === undefined) {
            const at = jsonPath(param, { parent: f.loc, seg: i })
            throw new HearthError('invalid_parameter', `${at} is undefined, which JSON cannot hold`, at)
          }
          stack.push({ value: item, loc: { parent: f.loc, seg: i }, depth, into: arr, key: i })
        }
        out = arr
      } else {
        if (!isPlainObject(v)) {
          const at = jsonPath(param, f.loc)
          throw new HearthError('invalid_parameter', `${at} is ${describe(v)}, not a JSON value`, at)
        }
        const obj: JsonObject = {}
        const record = v as Record<string, unknown>
        const keys = Object.keys(record).filter((k) => record[k] !== undefined)
        bytes += 2 + Math.max(0, keys.length - 1)
        for (const k of keys) bytes += jsonStringBytes(k) + 1
        if (bytes > limits.maxBytes) throw tooBig()
        // members are pushed in reverse so that they are copied (and reported) in key order
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]!
          stack.push({ value: record[k], loc: { parent: f.loc, seg: k }, depth, into: obj, key: k })
        }
        if (copy) for (const k of keys) obj[k] = null // keep the key order of the source
        out = obj
      }
    } else {
      const at = jsonPath(param, f.loc)
      throw new HearthError('invalid_parameter', `${at} is ${describe(v)}, not a JSON value`, at)
    }
    if (bytes > limits.maxBytes) throw tooBig()
    if (copy) {
      if (f.into === null) root.v = out
      else if (Array.isArray(f.into)) f.into[f.key as number] = out
      else f.into[f.key as string] = out
    }
  }
  return root.v
}

/**
 * Refuses a JSON value from the wire that is nested deeper than `limits.maxDepth` or larger than
 * `limits.maxBytes` (as JSON), or that is not JSON at all, before it reaches anything recursive.
 * Throws `invalid_parameter` naming the place (`param` plus the path inside the value).
 */
export function checkJsonValueLimits(value: unknown, param: string, limits: JsonValueLimits = JSON_VALUE_LIMITS): void {
  walk(value, param, limits, 'invalid_parameter', false)
}

/** Like checkJsonValueLimits, and returns a plain, unshared copy of the value (what JSON.stringify would write). */
export function copyJsonWithinLimits(value: unknown, param: string, limits: JsonValueLimits, code: ErrorCode): JsonValue {
  return walk(value, param, limits, code, true)
}

/**
 * The same limits for JSON still in text form (a tool call's `arguments` string), without parsing it:
 * bytes are counted as UTF-8 and depth as brackets opened outside string literals. It does not check that
 * the text is JSON; whoever parses it still must.
 */
export function checkJsonTextLimits(text: string, param: string, limits: JsonValueLimits = JSON_VALUE_LIMITS): void {
  if (text.length > limits.maxBytes || Buffer.byteLength(text) > limits.maxBytes) {
    throw new HearthError('invalid_parameter', `${param} is larger than ${limits.maxBytes} bytes`, param)
  }
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next unit is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limits.maxDepth) {
        throw new HearthError('invalid_parameter', `${param} is nested deeper than ${limits.maxDepth} levels`, param)
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
}

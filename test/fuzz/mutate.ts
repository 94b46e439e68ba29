// Mutations of a valid body: field by field (hostile values, deletions, unknown and misplaced fields, wrapping),
// and below JSON (truncated or malformed text, invalid UTF-8, odd encodings and content types).
import { clone, deleteAt, getAt, obj, pathName, paths, Raw, serialize, setAt, setKey, sizeUpTo, type FuzzObject, type FuzzValue, type Path } from './fuzz-value.js'
import { BAD_NUMBER_LITERALS, hostile, ODD_KEYS } from './values.js'
import type { Rng } from './rng.js'

export interface Mutated {
  body: FuzzObject
  /** one line per change, e.g. `temperature = edge number 1e999` */
  changes: string[]
  /** the top-level fields changed */
  touched: string[]
}

function short(v: FuzzValue | undefined): string {
  if (v === undefined) return 'undefined'
  if (v instanceof Raw) return v.expr.length > 80 ? `${v.expr.slice(0, 60)}...` : v.expr
  if (typeof v === 'string' && v.length > 60) return `${JSON.stringify(v.slice(0, 40))}... (${v.length} chars)`
  const size = sizeUpTo(v, 200)
  if (size > 200) return `${serialize(Array.isArray(v) ? v.slice(0, 1) : typeof v === 'object' && v !== null ? {} : v).slice(0, 40)}... (${Array.isArray(v) ? `${v.length} items` : 'large'})`
  const s = serialize(v)
  return s.length > 60 ? `${s.slice(0, 40)}... (${s.length} chars)` : s
}

/** Values copied about a body stay this small, so copies of copies cannot grow without bound. */
const MAX_COPY = 100_000

/** 1-3 field mutations of `base` (which is not changed). */
export function mutateFields(rng: Rng, base: FuzzObject, knownFields: string[]): Mutated {
  const body = clone(base) as FuzzObject
  const changes: string[] = []
  const touched = new Set<string>()
  const n = rng.weighted([[6, 1], [3, 2], [1, 3]] as const)
  for (let i = 0; i < n; i++) {
    const all = paths(body)
    const op = rng.weighted<string>([[8, 'replace'], [2, 'delete'], [2, 'add-known'], [2, 'add-unknown'], [1, 'wrap'], [1, 'misplace']])
    if (op === 'add-known' || op === 'add-unknown') {
      const key = op === 'add-known' ? rng.pick(knownFields) : rng.pick(ODD_KEYS)
      const { value, what } = hostile(rng, getAt(body, [key]))
      setKey(body, key, value)
      changes.push(`${op === 'add-known' ? 'set' : 'add unknown'} ${JSON.stringify(key).slice(0, 40)} = ${what} ${short(value)}`)
      touched.add(key)
      continue
    }
    if (all.length === 0) continue
    const path: Path = rng.pick(all)
    const top = String(path[0])
    const current = getAt(body, path)
    if (op === 'replace') {
      const { value, what } = hostile(rng, current)
      setAt(body, path, value)
      changes.push(`${pathName(path)} = ${what} ${short(value)}`)
    } else if (op === 'delete') {
      deleteAt(body, path)
      changes.push(`delete ${pathName(path)}`)
    } else if (op === 'wrap') {
      const wrapped = rng.chance(0.5) ? [current ?? null] : obj([[rng.pick(['value', 'type', 'text', '0']), current ?? null]])
      setAt(body, path, wrapped)
      changes.push(`wrap ${pathName(path)} in ${Array.isArray(wrapped) ? 'an array' : 'an object'}`)
    } else {
      // a field's value where another field belongs, e.g. messages where prompt goes
      const other = rng.pick(all)
      const value = getAt(body, other) ?? null
      setAt(body, path, sizeUpTo(value, MAX_COPY) > MAX_COPY ? null : clone(value))
      changes.push(`${pathName(path)} = the value of ${pathName(other)}`)
    }
    touched.add(top)
  }
  return { body, changes, touched: [...touched] }
}

/** A body that is not the JSON object the endpoint wants, as bytes, with a label. */
export interface RawBody {
  bytes: Buffer
  what: string
  /** the content type to send; undefined = application/json */
  contentType?: string | null
}

/** Breaks `body` below the JSON level. */
export function corruptText(rng: Rng, body: FuzzObject): RawBody {
  const text = serialize(body)
  const at = rng.int(0, text.length)
  const utf8 = (s: string) => Buffer.from(s, 'utf8')
  return rng.weighted<() => RawBody>([
    [2, () => ({ bytes: utf8(text.slice(0, at)), what: `truncated at ${at} of ${text.length}` })],
    [1, () => ({ bytes: utf8(text + rng.pick(['x', '}', ',', '\u0000', ' {}', '\n\n{"a":1}'])), what: 'trailing garbage' })],
    [1, () => ({ bytes: Buffer.alloc(0), what: 'empty body' })],
    [1, () => ({ bytes: utf8(rng.pick([' ', '\n', 'null', 'true', '0', '"x"', '[]', '[{}]', '{}', '{"":""}', '""'])), what: 'not an object' })],
    [1, () => ({ bytes: utf8('\ufeff' + text), what: 'UTF-8 BOM first' })],
    [1, () => ({ bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), what: 'UTF-16 with BOM' })],
    [1, () => ({ bytes: Buffer.from(text, 'utf16le'), what: 'UTF-16 without BOM', contentType: 'application/json; charset=utf-16' })],
    [2, () => {
      // bytes that are not UTF-8, inside a string value where possible
      const q = text.indexOf('"', Math.min(at, text.length - 1))
      const cut = q >= 0 ? q + 1 : at
      const bad = rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])
      return { bytes: Buffer.concat([utf8(text.slice(0, cut)), Buffer.from(bad), utf8(text.slice(cut))]), what: `invalid UTF-8 bytes ${Buffer.from(bad).toString('hex')}` }
    }],
    [1, () => ({ bytes: utf8(text.replace(/:(\d+)/, `:${rng.pick(BAD_NUMBER_LITERALS).text}`)), what: 'a number literal JSON does not allow' })],
    [1, () => ({ bytes: utf8(text.replace(/"([a-z_]+)":/, "'$1':")), what: 'single-quoted key' })],
    [1, () => ({ bytes: utf8(text.replace(/^\{/, '{/* c */')), what: 'a comment' })],
    [1, () => ({ bytes: utf8(text.replace(/"([^"\\]*)"/, (_m, s: string) => `"${s}\u0001\n${s}"`)), what: 'raw control characters in a string' })],
    [1, () => {
      const key = Object.keys(body)[0] ?? 'x'
      return { bytes: utf8(text.replace(/^\{/, `{${JSON.stringify(key)}:${rng.pick(['null', '1', '"x"', '[]'])},`)), what: `duplicate key ${key}` }
    }],
    [2, () => ({
      bytes: utf8(text),
      what: 'wrong content type',
      contentType: rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '', null, 'application/json; charset=latin1', '*/*']),
    })],
  ])()
}

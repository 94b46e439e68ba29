// The values bodies are built from: plain JSON, plus `Raw` fragments placed verbatim in the body text (what no JS
// value serializes to: NaN, 1e999, -0, nesting deeper than a recursive serializer survives, malformed pieces).
// Objects may own a "__proto__" key, so keys are always defined, never assigned.

/** Body text placed as is; `expr` is a JS expression that evaluates to `text` (for reproducers). */
export class Raw {
  readonly text: string
  readonly expr: string
  constructor(text: string, expr: string) {
    this.text = text
    this.expr = expr
  }
}

export type FuzzValue = null | boolean | number | string | Raw | FuzzValue[] | FuzzObject
export interface FuzzObject {
  [key: string]: FuzzValue
}
export type Path = (string | number)[]

export function isObject(v: FuzzValue | undefined): v is FuzzObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw)
}

/** Defines `key` as an own property even when it is "__proto__". */
export function setKey(o: FuzzObject, key: string, value: FuzzValue): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

export function obj(entries: [string, FuzzValue][]): FuzzObject {
  const o: FuzzObject = {}
  for (const [k, v] of entries) setKey(o, k, v)
  return o
}

export function clone(v: FuzzValue): FuzzValue {
  if (Array.isArray(v)) return v.map(clone)
  if (isObject(v)) return obj(Object.keys(v).map((k) => [k, clone(v[k]!)]))
  return v
}

export function containsRaw(v: FuzzValue): boolean {
  if (v instanceof Raw) return true
  if (Array.isArray(v)) return v.some(containsRaw)
  if (isObject(v)) return Object.keys(v).some((k) => containsRaw(v[k]!))
  return false
}

/** About how many characters `v` serializes to, counting no further than `cap` (so cheap on huge values). */
export function sizeUpTo(v: FuzzValue | undefined, cap: number): number {
  let size = 0
  const walk = (x: FuzzValue | undefined): boolean => {
    if (size > cap) return false
    if (x instanceof Raw) size += x.text.length
    else if (typeof x === 'string') size += x.length + 2
    else if (Array.isArray(x)) {
      size += 2
      for (const y of x) if (!walk(y)) return false
    } else if (isObject(x)) {
      size += 2
      for (const k of Object.keys(x)) {
        size += k.length + 4
        if (!walk(x[k])) return false
      }
    } else size += 5
    return size <= cap
  }
  walk(v)
  return Math.min(size, cap + 1)
}

/** Every path inside `v` (not the root), parents before children; stops `maxDepth` deep and at 2,000 paths. */
export function paths(v: FuzzValue, maxDepth = 6): Path[] {
  const out: Path[] = []
  const walk = (x: FuzzValue, at: Path) => {
    if (at.length >= maxDepth || out.length >= 2000) return
    if (Array.isArray(x)) {
      // long arrays: the first few elements and the last stand for the rest
      const idx = x.length <= 4 ? x.map((_, i) => i) : [0, 1, 2, x.length - 1]
      for (const i of idx) {
        out.push([...at, i])
        walk(x[i]!, [...at, i])
      }
    } else if (isObject(x)) {
      for (const k of Object.keys(x)) {
        out.push([...at, k])
        walk(x[k]!, [...at, k])
      }
    }
  }
  walk(v, [])
  return out
}

export function getAt(v: FuzzValue, path: Path): FuzzValue | undefined {
  let x: FuzzValue | undefined = v
  for (const p of path) {
    if (Array.isArray(x) && typeof p === 'number') x = x[p]
    else if (isObject(x) && typeof p === 'string' && Object.hasOwn(x, p)) x = x[p]
    else return undefined
  }
  return x
}

/** Sets the value at `path` (its parent must exist); returns false when it cannot. */
export function setAt(v: FuzzValue, path: Path, value: FuzzValue): boolean {
  const parent = getAt(v, path.slice(0, -1))
  const last = path.at(-1)
  if (Array.isArray(parent) && typeof last === 'number') parent[last] = value
  else if (isObject(parent) && typeof last === 'string') setKey(parent, last, value)
  else return false
  return true
}

export function deleteAt(v: FuzzValue, path: Path): boolean {
  const parent = getAt(v, path.slice(0, -1))
  const last = path.at(-1)
  if (Array.isArray(parent) && typeof last === 'number' && last < parent.length) parent.splice(last, 1)
  else if (isObject(parent) && typeof last === 'string' && Object.hasOwn(parent, last)) delete parent[last]
  else return false
  return true
}

/** `messages[0].content` */
export function pathName(path: Path): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '')
}

/** The body text: JSON.stringify's output for plain values, with Raw fragments as they are. Not recursive in Raw. */
export function serialize(v: FuzzValue): string {
  const out: string[] = []
  write(v, out, (r) => out.push(r.text))
  return out.join('')
}

/** Like serialize, but hands each Raw to `onRaw` in order, and the JSON text between them to `out`. */
export function write(v: FuzzValue, out: string[], onRaw: (r: Raw) => void): void {
  if (v instanceof Raw) onRaw(v)
  else if (Array.isArray(v)) {
    out.push('[')
    v.forEach((x, i) => {
      if (i) out.push(',')
      write(x, out, onRaw)
    })
    out.push(']')
  } else if (isObject(v)) {
    out.push('{')
    Object.keys(v).forEach((k, i) => {
      out.push(`${i ? ',' : ''}${JSON.stringify(k)}:`)
      write(v[k]!, out, onRaw)
    })
    out.push('}')
  } else out.push(JSON.stringify(v))
}

// What llama.cpp's converter makes of allOf and oneOf, checked after the walk, once every member is known and
// $ref-only cycles are refused: allOf merges its object members' properties (all required, no other keys) or
// intersects enum members; oneOf is built exactly as anyOf, exclusivity not enforced.
import type { JsonValue } from './json-limits.js'
import { epsilonNext, type SchemaNode } from './json-schema-graph.js'
import { ALL, jsonType, kindWords, type JsonType } from './json-schema-keywords.js'
import type { Fail } from './json-schema-leaves.js'
import { MAX_OPTIONAL_PROPERTIES } from './json-schema-limits.js'

/** Through $ref to what a schema is (only after the walk, once $ref-only cycles are refused). */
export function follow(n: SchemaNode): SchemaNode {
  while (n.kind === 'ref') n = n.ref!.target
  return n
}

/** The JSON types a subschema's grammar can produce, through $ref and alternatives (acyclic by then). */
function producedTypes(start: SchemaNode): Set<JsonType> {
  const out = new Set<JsonType>()
  const seen = new Set<number>()
  const stack = [start]
  while (stack.length) {
    const n = stack.pop()!
    if (seen.has(n.id)) continue
    seen.add(n.id)
    switch (n.kind) {
      case 'ref':
      case 'alternatives':
      case 'type-union':
        stack.push(...epsilonNext(n))
        break
      case 'const':
        out.add(jsonType(n.value.const!))
        break
      case 'enum':
        for (const v of n.value.enum as JsonValue[]) out.add(jsonType(v))
        break
      case 'object':
        out.add('object')
        break
      case 'tuple':
      case 'array':
        out.add('array')
        break
      case 'number':
        out.add('number').add('integer')
        break
      case 'all-of': // an object, or the values its enum members share
      case 'any':
        for (const t of ALL) out.add(t)
        break
      default:
        out.add(n.kind)
    }
  }
  return out
}

/** allOf after the walk: what the converter merges (every member resolved through $ref). */
export function gatherAllOf(node: SchemaNode, fail: Fail, strict: boolean): void {
  const members: Array<{ at: SchemaNode; m: SchemaNode; direct: boolean }> = []
  for (const { node: c } of node.children) {
    const m = follow(c)
    if (m.kind !== 'alternatives') {
      members.push({ at: c, m, direct: true })
      continue
    }
    if (strict) fail('unsupported_schema', c.loc, null, 'is an anyOf/oneOf inside allOf, which llama.cpp\'s converter merges into optional properties without enforcing it')
    for (const alt of m.children) members.push({ at: alt.node, m: follow(alt.node), direct: false })
  }
  if (members.every((x) => x.direct && x.m.kind === 'enum')) {
    // the converter keeps the values found in every member; none left would give an empty object instead
    const counts = new Map<string, number>()
    for (const { m } of members) for (const x of m.value.enum as JsonValue[]) counts.set(JSON.stringify(x), (counts.get(JSON.stringify(x)) ?? 0) + 1)
    if (![...counts.values()].some((c) => c === node.children.length)) fail('invalid_parameter', node.loc, 'allOf', 'has no value that every member\'s enum allows')
    return
  }
  const seen = new Set<string>()
  let optional = 0
  for (const { at, m, direct } of members) {
    if (m.kind === 'any' || (!direct && m.kind !== 'object')) continue // constrains nothing / dropped (not strict)
    if (m.kind !== 'object') {
      fail('unsupported_schema', at.loc, null, `is ${kindWords(m.kind)} inside allOf: llama.cpp's converter only merges object members (or intersects enums) and would build a wrong grammar`)
    }
    for (const p of m.props) {
      if (seen.has(p.name)) fail('unsupported_schema', node.loc, 'allOf', `defines the property ${JSON.stringify(p.name)} in two members, which llama.cpp's converter would write twice`)
      seen.add(p.name)
      if (!direct) optional++
      node.gathered.push({ node: p.node, seg: p.name })
    }
  }
  if (optional > MAX_OPTIONAL_PROPERTIES) fail('unsupported_schema', node.loc, 'allOf', `merges ${optional} optional properties, more than the ${MAX_OPTIONAL_PROPERTIES} allowed`)
}

/** Pairwise checks for object alternatives without one shared discriminator stop being cheap past this many. */
const PAIRWISE_OBJECTS = 32

/**
 * The converter builds oneOf as anyOf, so a strict oneOf must be exclusive by itself: every two alternatives
 * produce different JSON types, or are objects told apart by a required property with different constants
 * (a discriminated union). Linear in the alternatives when one property tells all the objects apart.
 */
export function checkExclusive(node: SchemaNode, fail: Fail): void {
  const alts = node.children.map((e) => follow(e.node))
  const overlap = (i: number, j: number): never =>
    fail('unsupported_schema', node.loc, 'oneOf', `alternatives ${i} and ${j} can both match, and llama.cpp's grammar treats oneOf as anyOf: use anyOf, or make them exclusive by type or by a required property with different const values`)
  const objects = alts.flatMap((a, i) => (a.kind === 'object' ? [i] : []))
  const others: Array<[number, Set<JsonType>]> = []
  alts.forEach((a, i) => {
    if (a.kind === 'object') return
    const types = producedTypes(a)
    for (const [j, t] of others) if ([...t].some((x) => types.has(x))) overlap(j, i) // at most 7 get past this
    if (objects.length && types.has('object')) overlap(Math.min(i, objects[0]!), Math.max(i, objects[0]!))
    others.push([i, types])
  })
  if (objects.length < 2) return
  const tag = (o: SchemaNode, name: string): string[] | null => {
    const p = o.props.find((x) => x.name === name && x.required)
    const v = p && follow(p.node)
    if (v?.kind === 'const') return [JSON.stringify(v.value.const)]
    if (v?.kind === 'enum') return (v.value.enum as JsonValue[]).map((x) => JSON.stringify(x))
    return null
  }
  // one property whose constants differ across all the objects
  for (const { name } of alts[objects[0]!]!.props) {
    const owner = new Map<string, number>()
    const sharedBy = objects.every((i) => {
      const values = tag(alts[i]!, name)
      if (!values) return false
      for (const v of new Set(values)) {
        if (owner.has(v)) return false
        owner.set(v, i)
      }
      return true
    })
    if (sharedBy) return
  }
  if (objects.length > PAIRWISE_OBJECTS) {
    fail('unsupported_schema', node.loc, 'oneOf', `has ${objects.length} object alternatives and no required property whose const values tell them all apart, and llama.cpp's grammar treats oneOf as anyOf: add such a discriminator, or use anyOf`)
  }
  for (let x = 0; x < objects.length; x++) {
    for (let y = x + 1; y < objects.length; y++) {
      const a = alts[objects[x]!]!
      const b = alts[objects[y]!]!
      const apart = a.props.some((p) => {
        const u = tag(a, p.name)
        const w = tag(b, p.name)
        return u !== null && w !== null && !u.some((k) => w.includes(k))
      })
      if (!apart) overlap(objects[x]!, objects[y]!)
    }
  }
}

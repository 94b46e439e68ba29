// The subschemas llama.cpp's converter builds from a schema, as a graph, and what that graph costs it:
// cycles it cannot handle, how many subschemas it visits, how deep it recurses. Pure and iterative.
//
// How the converter walks (common/json-schema.cpp builds nodes, common/json-schema-to-grammar.cpp visits them):
// - tree edges (properties, items, alternatives, ...) are followed recursively, one C++ stack level each;
// - a `$ref` builds and visits its target once per distinct $ref string, inline at its first use (a later use,
//   or a use inside the target itself, is just the target's rule name: that is how recursive schemas work);
// - `allOf` re-visits the properties of its object members (through $ref too) every time, with no memo.
import type { JsonLoc, JsonObject } from './json-limits.js'

/** How the converter reads a subschema (the first matching rule of its build_node). */
export type SchemaKind =
  | 'ref' // {"$ref": "#/..."}: nothing else is read
  | 'alternatives' // anyOf / oneOf: nothing else is read
  | 'type-union' // "type": [...]: one copy of the schema per type
  | 'const'
  | 'enum'
  | 'object'
  | 'all-of'
  | 'array'
  | 'tuple' // items (or prefixItems) given as an array
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'null'
  | 'any' // no type and nothing that implies one

export interface SchemaEdge {
  node: SchemaNode
  /** what this edge adds to the converter's rule name (a property name, "item", ...) */
  seg: string
}

export interface SchemaNode {
  readonly id: number
  readonly value: JsonObject
  readonly loc: JsonLoc | null
  /** the type this copy of a "type": [...] schema stands for; null for the schema itself */
  readonly variant: string | null
  /** subschema levels below the schema root (or below the $ref target it was first reached through) */
  readonly depth: number
  kind: SchemaKind
  /** subschemas built and visited from here */
  children: SchemaEdge[]
  /** for objects: the properties, in order */
  props: Array<{ name: string; node: SchemaNode; required: boolean }>
  /** for kind 'ref' */
  ref: { text: string; target: SchemaNode } | null
  /** for allOf: the member properties the converter visits again for this node */
  gathered: SchemaEdge[]
  /** repetitions this node writes into the grammar (each becomes rules in llama.cpp's grammar parser) */
  repetitions: number
}

/** Successors reached without consuming input: a $ref's target, each alternative (anyOf, type union). */
export function epsilonNext(n: SchemaNode): SchemaNode[] {
  if (n.kind === 'ref') return [n.ref!.target]
  if (n.kind === 'alternatives' || n.kind === 'type-union') return n.children.map((e) => e.node)
  return []
}

/** Successors the converter recurses into without a memo: tree edges and allOf's gathered properties. */
export function recursionNext(n: SchemaNode): SchemaEdge[] {
  return n.gathered.length ? [...n.children, ...n.gathered] : n.children
}

/**
 * The first cycle found in the graph given by `next` (depth-first from each node in order): the node the
 * closing edge leads back to, or null when there is none.
 */
export function findCycle(nodes: readonly SchemaNode[], next: (n: SchemaNode) => SchemaNode[]): SchemaNode | null {
  const state = new Uint8Array(nodes.length) // 0 unseen, 1 on the current path, 2 done
  for (const start of nodes) {
    if (state[start.id]) continue
    state[start.id] = 1
    const stack = [{ node: start, i: 0, succ: next(start) }]
    while (stack.length) {
      const top = stack[stack.length - 1]!
      if (top.i < top.succ.length) {
        const s = top.succ[top.i++]!
        if (state[s.id] === 1) return s
        if (state[s.id] === 0) {
          state[s.id] = 1
          stack.push({ node: s, i: 0, succ: next(s) })
        }
      } else {
        state[top.node.id] = 2
        stack.pop()
      }
    }
  }
  return null
}

/** What the converter does for one schema, counted as it walks (see the header). */
export interface ConverterCost {
  /** subschema visits, a target counted once per distinct $ref string and allOf members once per allOf */
  subschemas: number
  /** repetitions written into the grammar */
  repetitions: number
  /** bytes of rule names: each nested rule's name is its parent's name, "-", and its own segment */
  nameBytes: number
  /** an upper bound of the converter's recursion depth in subschema levels, through $ref */
  depth: number
}

interface Totals {
  count: number
  reps: number
  /** name bytes of the visits below, relative to this node's own name */
  names: number
  /** longest chain of recursion below, this node included */
  height: number
}

/** Post-order totals over the recursion graph, which must be acyclic (check findCycle first). */
function totals(nodes: readonly SchemaNode[]): Totals[] {
  const out: Array<Totals | undefined> = new Array(nodes.length)
  for (const start of nodes) {
    if (out[start.id]) continue
    const stack = [{ node: start, i: 0, succ: recursionNext(start) }]
    const entered = new Set<number>([start.id])
    while (stack.length) {
      const top = stack[stack.length - 1]!
      if (top.i < top.succ.length) {
        const s = top.succ[top.i++]!.node
        if (!out[s.id] && !entered.has(s.id)) {
          entered.add(s.id)
          stack.push({ node: s, i: 0, succ: recursionNext(s) })
        }
        continue
      }
      const t: Totals = { count: 1, reps: top.node.repetitions, names: 0, height: 1 }
      for (const e of top.succ) {
        const c = out[e.node.id]!
        t.count += c.count
        t.reps += c.reps
        t.names += c.names + (1 + e.seg.length) * c.count
        t.height = Math.max(t.height, 1 + c.height)
      }
      out[top.node.id] = t
      stack.pop()
    }
  }
  return out as Totals[]
}

/** Every $ref node reachable from `unit` without crossing another $ref: the units it can build inline. */
function unitsBelow(unit: SchemaNode): SchemaNode[] {
  const seen = new Set<number>([unit.id])
  const found = new Map<number, SchemaNode>()
  const stack = [unit]
  while (stack.length) {
    const n = stack.pop()!
    if (n.kind === 'ref') found.set(n.ref!.target.id, n.ref!.target)
    for (const e of recursionNext(n)) {
      if (!seen.has(e.node.id)) {
        seen.add(e.node.id)
        stack.push(e.node)
      }
    }
  }
  return [...found.values()]
}

/**
 * An upper bound of the recursion depth through $ref. A chain of first uses passes each $ref target at most
 * once, descending at most its own height inside it; over the strongly connected groups of targets (Tarjan,
 * iteratively) the bound of a group is the sum of its members' heights plus the largest bound it leads to.
 */
function depthThroughRefs(root: SchemaNode, height: (n: SchemaNode) => number): number {
  const below = new Map<number, SchemaNode[]>()
  const next = (u: SchemaNode): SchemaNode[] => {
    let b = below.get(u.id)
    if (!b) below.set(u.id, (b = unitsBelow(u)))
    return b
  }
  const index = new Map<number, number>()
  const low = new Map<number, number>()
  const group = new Map<number, number>() // unit id → group bound, once its group is closed
  const open: SchemaNode[] = []
  const onOpen = new Set<number>()
  let counter = 0
  const enter = (u: SchemaNode) => {
    index.set(u.id, counter)
    low.set(u.id, counter++)
    open.push(u)
    onOpen.add(u.id)
    return { unit: u, i: 0, succ: next(u) }
  }
  const work = [enter(root)]
  while (work.length) {
    const top = work[work.length - 1]!
    const u = top.unit
    if (top.i < top.succ.length) {
      const w = top.succ[top.i++]!
      if (!index.has(w.id)) work.push(enter(w))
      else if (onOpen.has(w.id)) low.set(u.id, Math.min(low.get(u.id)!, index.get(w.id)!))
      continue
    }
    work.pop()
    if (work.length) {
      const parent = work[work.length - 1]!.unit
      low.set(parent.id, Math.min(low.get(parent.id)!, low.get(u.id)!))
    }
    if (low.get(u.id) !== index.get(u.id)) continue
    // u closes a group: every group it leads to is closed already
    const members: SchemaNode[] = []
    let m: SchemaNode
    do {
      m = open.pop()!
      onOpen.delete(m.id)
      members.push(m)
    } while (m !== u)
    const ids = new Set(members.map((x) => x.id))
    let own = 0
    let deepest = 0
    for (const x of members) {
      own += height(x)
      for (const w of next(x)) if (!ids.has(w.id)) deepest = Math.max(deepest, group.get(w.id)!)
    }
    for (const x of members) group.set(x.id, own + deepest)
  }
  return group.get(root.id)!
}

/**
 * What converting costs, given the root and the distinct $ref strings with their targets. The graph must
 * have no recursion cycle (findCycle over recursionNext) and no $ref-only cycle (findCycle over epsilonNext).
 */
export function converterCost(nodes: readonly SchemaNode[], root: SchemaNode, refs: ReadonlyMap<string, SchemaNode>): ConverterCost {
  const t = totals(nodes)
  // the root's rules are named from "root"; a target's from "ref" and its sanitized pointer
  const units: Array<[SchemaNode, number]> = [[root, 4]]
  for (const [text, target] of refs) units.push([target, 3 + text.length])
  const cost: ConverterCost = { subschemas: 0, repetitions: 0, nameBytes: 0, depth: 0 }
  for (const [u, base] of units) {
    const c = t[u.id]!
    cost.subschemas += c.count
    cost.repetitions += c.reps
    cost.nameBytes += base * c.count + c.names
  }
  cost.depth = depthThroughRefs(root, (n) => t[n.id]!.height)
  return cost
}

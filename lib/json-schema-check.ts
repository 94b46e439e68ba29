// Checks a JSON schema before llama.cpp's json_schema_to_grammar turns it into a GBNF grammar. That converter
// (common/json-schema.cpp, common/json-schema-to-grammar.cpp in deps/llama.cpp) reads a subset of JSON Schema,
// silently ignores the rest, recurses once per nesting level, loops forever or builds giant grammars on some
// inputs. So every schema passes through checkSchema first:
// - always: the limits below (each measured against the converter and llama.cpp's grammar parser and sampler),
//   and everything the converter would fail on, crash on, hang on, or turn into a grammar that contradicts the
//   schema (not merely one that is looser);
// - strict (response_format json_schema, tools marked strict): also everything that would let output follow the
//   grammar yet fail the schema: keywords the converter ignores (unknown ones, unknown formats, bounds on numbers,
//   siblings of $ref/anyOf, ...), oneOf whose alternatives overlap (it is built as anyOf), and the two places where
//   its grammar writes characters unescaped (patterns that can match `"`, `\` or control characters; extra keys
//   next to properties). Non-strict schemas (ordinary tool parameters, where clients add keywords the converter
//   ignores) keep all of that, unenforced, as llama-server does.
// What the converter reads, per subschema, in this order: `$ref` (alone: only "#/..." pointers into the same
// document), `oneOf`/`anyOf` (alone: the alternatives, oneOf not exclusive), `type` arrays (one copy per type),
// `const`, `enum`, then by type: object (properties, required, additionalProperties), allOf (object members'
// properties merged, all required; or enum members intersected), array (items or prefixItems, minItems,
// maxItems; an items array is an exact-length tuple), string (pattern, else format date/time/date-time/
// uuid/uuid1-5, else minLength/maxLength), integer (minimum/maximum or exclusiveMinimum/exclusiveMaximum),
// number, boolean, null. Without a type, properties/additionalProperties, allOf, items/prefixItems and string
// keywords pick the kind in that order. Annotations (title, description, default, ...) never matter.
import { HearthError } from './errors.js'
import { copyJsonWithinLimits, jsonPath, type JsonLoc, type JsonObject, type JsonValue } from './json-limits.js'
import { converterCost, epsilonNext, findCycle, recursionNext, type SchemaNode } from './json-schema-graph.js'
import { ALL, ANNOTATIONS, CONSTRAINS, FORMATS, fits, jsonType, kindWords, TYPES, unknownFormat, unsupportedWhy, type JsonType } from './json-schema-keywords.js'
import {
  MAX_ARRAY_ITEMS_BOUND, MAX_ENUM_BYTES, MAX_ENUM_VALUES, MAX_GRAMMAR_REPETITIONS, MAX_NAME_BYTES, MAX_OPTIONAL_PROPERTIES, MAX_REF_LENGTH,
  MAX_REFS, MAX_RULE_NAME_BYTES, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, MAX_SCHEMA_JSON_DEPTH, MAX_SCHEMA_NODES,
} from './json-schema-limits.js'
import { checkExclusive, gatherAllOf } from './json-schema-combinators.js'
import { readInteger, readString, type Fail, type Reading } from './json-schema-leaves.js'

export * from './json-schema-limits.js'

export interface SchemaCheckOptions {
  /** where the schema sits in the request, e.g. `response_format.json_schema.schema`; errors extend it */
  param: string
  /** refuse whatever would let output follow the grammar and still fail the schema (response_format, strict tools) */
  strict: boolean
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)
const has = (o: JsonObject, k: string): boolean => Object.hasOwn(o, k)
const child = (parent: JsonLoc | null, seg: string | number): JsonLoc => ({ parent, seg })

/**
 * Checks `schema` as described at the top of this file. Throws a HearthError (400): `invalid_parameter` when
 * the schema is malformed or contradicts itself, `unsupported_schema` when it is valid JSON Schema that hearth
 * cannot turn into a grammar as asked (a limit, an unsupported keyword in strict mode, a shape the converter
 * mishandles). The message and `param` name the place: `opts.param` plus the path inside the schema.
 * What passes converts: json_schema_to_grammar on JSON.stringify(schema) neither fails, crashes nor hangs, the
 * grammar parses within the limits, and in strict mode the converter does not warn (checked against the real
 * converter and grammar parser on thousands of random schemas). Iterative throughout: no input overflows a stack.
 */
export function checkSchema(schema: unknown, opts: SchemaCheckOptions): void {
  const root = copyJsonWithinLimits(schema, opts.param, { maxDepth: MAX_SCHEMA_JSON_DEPTH, maxBytes: MAX_SCHEMA_BYTES }, 'unsupported_schema')
  new SchemaChecker(root as JsonObject, opts).run(root)
}

class SchemaChecker {
  readonly #doc: JsonObject
  readonly #opts: SchemaCheckOptions
  readonly #nodes: SchemaNode[] = []
  readonly #byValue = new Map<JsonObject, SchemaNode>()
  readonly #pending: SchemaNode[] = []
  readonly #allOfs: SchemaNode[] = []
  /** distinct $ref strings and their targets, in first-use order */
  readonly #refs = new Map<string, SchemaNode>()
  /** the converter's rule name for each $ref, to catch two refs it would confuse */
  readonly #refNames = new Map<string, string>()

  constructor(doc: JsonObject, opts: SchemaCheckOptions) {
    this.#doc = doc
    this.#opts = opts
  }

  run(root: JsonValue): void {
    const rootNode = this.#schemaAt(root, null, 1)
    while (this.#pending.length) this.#analyze(this.#pending.pop()!)
    const loop = findCycle(this.#nodes, epsilonNext)
    if (loop) {
      this.#fail('unsupported_schema', loop.loc, null, 'refers back to itself without consuming any input (through $ref and anyOf/oneOf alternatives): llama.cpp cannot use such a grammar (left recursion); recursion has to pass through a property or an array item')
    }
    for (const n of this.#allOfs) gatherAllOf(n, this.#fail, this.#opts.strict)
    if (this.#opts.strict) for (const n of this.#nodes) if (n.kind === 'alternatives' && has(n.value, 'oneOf')) checkExclusive(n, this.#fail)
    const again = findCycle(this.#nodes, (n) => recursionNext(n).map((e) => e.node))
    if (again) {
      this.#fail('unsupported_schema', again.loc, null, 'is reached again from inside itself through allOf: llama.cpp\'s converter expands allOf members inline and would recurse forever')
    }
    const cost = converterCost(this.#nodes, rootNode, this.#refs)
    const over = (what: string, value: number, limit: number) => {
      if (value > limit) this.#fail('unsupported_schema', null, null, `expands to ${value} ${what} in llama.cpp's grammar converter, more than the ${limit} allowed`)
    }
    over('subschema visits', cost.subschemas, MAX_SCHEMA_NODES)
    over('grammar repetitions (minLength, maxLength, minItems, maxItems, pattern counts)', cost.repetitions, MAX_GRAMMAR_REPETITIONS)
    over('bytes of grammar rule names', cost.nameBytes, MAX_RULE_NAME_BYTES)
    over('levels of nesting counted through $ref', cost.depth, MAX_SCHEMA_DEPTH)
  }

  readonly #fail: Fail = (code, loc, keyword, text) => {
    const at = jsonPath(this.#opts.param, keyword === null ? loc : child(loc, keyword))
    throw new HearthError(code, `${at} ${text}`, at)
  }

  /** The node for a subschema the converter builds at `loc` (it must be a schema object). */
  #schemaAt(value: JsonValue, loc: JsonLoc | null, depth: number): SchemaNode {
    if (!isObject(value)) {
      if (typeof value === 'boolean') this.#fail('unsupported_schema', loc, null, `is the boolean schema ${value}, which llama.cpp's converter does not accept; use {} for true`)
      this.#fail('invalid_parameter', loc, null, 'must be a schema object')
    }
    const known = this.#byValue.get(value)
    if (known) return known
    const node = this.#newNode(value, loc, null, depth)
    this.#byValue.set(value, node)
    return node
  }

  #newNode(value: JsonObject, loc: JsonLoc | null, variant: string | null, depth: number): SchemaNode {
    if (this.#nodes.length >= MAX_SCHEMA_NODES) this.#fail('unsupported_schema', loc, null, `is past the ${MAX_SCHEMA_NODES}-subschema limit`)
    if (depth > MAX_SCHEMA_DEPTH) this.#fail('unsupported_schema', loc, null, `is nested deeper than ${MAX_SCHEMA_DEPTH} subschemas`)
    const node: SchemaNode = { id: this.#nodes.length, value, loc, variant, depth, kind: 'any', children: [], props: [], ref: null, gathered: [], repetitions: 0 }
    this.#nodes.push(node)
    this.#pending.push(node)
    return node
  }

  #edge(node: SchemaNode, value: JsonValue, keyPath: Array<string | number>, seg: string): SchemaNode {
    let loc = node.loc
    for (const k of keyPath) loc = child(loc, k)
    const c = this.#schemaAt(value, loc, node.depth + 1)
    node.children.push({ node: c, seg })
    return c
  }

  #analyze(node: SchemaNode): void {
    const v = node.value
    if (node.variant === null) {
      if (this.#opts.strict) {
        for (const k of Object.keys(v)) {
          if (!ANNOTATIONS.has(k) && !CONSTRAINS.has(k)) this.#fail('unsupported_schema', node.loc, k, unsupportedWhy(k))
        }
      }
      this.#checkScalars(node)
    }
    const mark = this.#pending.length
    const reading = this.#read(node)
    // children are taken from the end of the stack: reversed, they are checked (and reported) in document order
    const added = this.#pending.splice(mark).reverse()
    this.#pending.push(...added)
    if (!reading || !this.#opts.strict) return
    for (const k of Object.keys(v)) {
      const constrains = CONSTRAINS.get(k)
      if (!constrains || reading.reads.has(k)) continue
      if (reading.produces && ![...constrains].some((t) => reading.produces!.has(t))) continue // vacuous here
      const why = reading.why?.(k) ??
        (k === 'format' && !FORMATS.has(v.format as string) ? unknownFormat(v.format) : `is ignored by llama.cpp's converter when it reads this schema as ${kindWords(node.kind)}`)
      this.#fail('unsupported_schema', node.loc, k, `${why}, so the grammar would not enforce it (a strict schema may not rely on it)`)
    }
  }

  /** Keywords with scalar values are refused when malformed, wherever they appear. */
  #checkScalars(node: SchemaNode): void {
    const v = node.value
    for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems']) {
      if (has(v, k) && !(Number.isInteger(v[k]) && (v[k] as number) >= 0)) this.#fail('invalid_parameter', node.loc, k, 'must be a non-negative integer')
    }
    for (const k of ['pattern', 'format']) if (has(v, k) && typeof v[k] !== 'string') this.#fail('invalid_parameter', node.loc, k, 'must be a string')
    for (const k of ['minimum', 'maximum']) if (has(v, k) && typeof v[k] !== 'number') this.#fail('invalid_parameter', node.loc, k, 'must be a number')
    for (const k of ['exclusiveMinimum', 'exclusiveMaximum']) {
      if (has(v, k) && typeof v[k] !== 'number' && typeof v[k] !== 'boolean') this.#fail('invalid_parameter', node.loc, k, 'must be a number')
    }
    if (has(v, 'required') && !(Array.isArray(v.required) && v.required.every((r) => typeof r === 'string'))) {
      this.#fail('invalid_parameter', node.loc, 'required', 'must be an array of property names')
    }
  }

  /** Mirrors build_node: decides the kind, checks what that kind reads, adds the children it builds. */
  #read(node: SchemaNode): Reading | null {
    const v = node.value
    if (node.variant === null) {
      if (has(v, '$ref')) return this.#readRef(node)
      if (has(v, 'oneOf') || has(v, 'anyOf')) return this.#readAlternatives(node)
    }
    const type = node.variant ?? v.type
    if (Array.isArray(type)) return this.#readTypeUnion(node, type)
    if (has(v, 'const')) return this.#readValues(node, 'const', [v.const!])
    if (has(v, 'enum')) return this.#readValues(node, 'enum', v.enum!)
    if (type !== undefined && typeof type !== 'string') this.#fail('invalid_parameter', node.loc, 'type', 'must be a type name or an array of them')
    const objectish = has(v, 'properties') || (has(v, 'additionalProperties') && v.additionalProperties !== true)
    const withType = (r: Reading): Reading => {
      r.reads.add('type')
      return r
    }
    switch (type) {
      case undefined:
        if (objectish) return this.#readObject(node)
        if (has(v, 'allOf')) return this.#readAllOf(node)
        if (has(v, 'items') || has(v, 'prefixItems')) return this.#readArray(node)
        if (['pattern', 'minLength', 'maxLength'].some((k) => has(v, k)) || FORMATS.has(v.format as string)) return readString(node, this.#fail, this.#opts.strict)
        return { reads: new Set(), produces: ALL }
      case 'object':
        return withType(!objectish && has(v, 'allOf') ? this.#readAllOf(node) : this.#readObject(node))
      case 'string':
        if (has(v, 'allOf')) this.#fail('unsupported_schema', node.loc, 'allOf', 'on a string schema is turned into an object grammar by llama.cpp\'s converter; put the string keywords in the schema itself')
        return withType(readString(node, this.#fail, this.#opts.strict))
      case 'array':
        return withType(this.#readArray(node))
      case 'integer':
        return withType(readInteger(node, this.#fail))
      case 'number':
      case 'boolean':
      case 'null':
        node.kind = type
        return { reads: new Set(['type']), produces: type === 'number' ? new Set<JsonType>(['number', 'integer']) : new Set([type]) }
      default:
        this.#fail('invalid_parameter', node.loc, 'type', `${JSON.stringify(type)} is not a JSON Schema type (${TYPES.join(', ')})`)
    }
  }

  #readRef(node: SchemaNode): Reading {
    node.kind = 'ref'
    const text = node.value.$ref
    if (typeof text !== 'string') this.#fail('invalid_parameter', node.loc, '$ref', 'must be a string')
    if (text.length > MAX_REF_LENGTH) this.#fail('unsupported_schema', node.loc, '$ref', `is longer than ${MAX_REF_LENGTH} characters`)
    if (text === '#') {
      this.#fail('unsupported_schema', node.loc, '$ref', '"#" (the whole schema) is not supported by llama.cpp\'s converter: move the recursive part into $defs and refer to it as "#/$defs/Name"')
    }
    if (!text.startsWith('#/')) this.#fail('unsupported_schema', node.loc, '$ref', `${JSON.stringify(text)} is not supported: only pointers into the same schema ("#/...") are`)
    let target = this.#refs.get(text)
    if (!target) {
      if (this.#refs.size >= MAX_REFS) this.#fail('unsupported_schema', node.loc, '$ref', `is one more distinct $ref than the ${MAX_REFS} allowed`)
      // the converter names the target's rule after the pointer, and takes an existing rule of that name as it
      const name = 'ref' + text.slice(1).replace(/[^a-zA-Z0-9-]+/g, '-')
      const other = this.#refNames.get(name)
      if (other !== undefined) {
        this.#fail('unsupported_schema', node.loc, '$ref', `${JSON.stringify(text)} and ${JSON.stringify(other)} get the same grammar rule name in llama.cpp's converter, which would use one target for both; rename one of them`)
      }
      this.#refNames.set(name, text)
      const { value, loc } = this.#resolve(text, node)
      target = this.#schemaAt(value, loc, 1)
      this.#refs.set(text, target)
    }
    node.ref = { text, target }
    return { reads: new Set(['$ref']), produces: null, why: () => 'next to $ref is ignored: llama.cpp\'s converter reads only the $ref (move it into the referenced schema)' }
  }

  /** Follows a "#/..." pointer as the converter does: keys as written (no ~0 ~1 or %-decoding), array indices. */
  #resolve(text: string, node: SchemaNode): { value: JsonValue; loc: JsonLoc | null } {
    let value: JsonValue = this.#doc
    let loc: JsonLoc | null = null
    for (const sel of text.slice(2).split('/')) {
      if (isObject(value) && has(value, sel)) {
        value = value[sel]!
        loc = child(loc, sel)
      } else if (Array.isArray(value)) {
        if (!/^(0|[1-9][0-9]*)$/.test(sel)) this.#fail('unsupported_schema', node.loc, '$ref', `${JSON.stringify(text)}: the array index ${JSON.stringify(sel)} must be a plain decimal number`)
        const i = Number(sel)
        if (i >= value.length) this.#fail('invalid_parameter', node.loc, '$ref', `${JSON.stringify(text)} cannot be resolved: index ${i} is out of range`)
        value = value[i]!
        loc = child(loc, i)
      } else {
        this.#fail('invalid_parameter', node.loc, '$ref', `${JSON.stringify(text)} cannot be resolved: ${JSON.stringify(sel)} is not there (JSON-pointer escapes like ~1 are not decoded)`)
      }
    }
    return { value, loc }
  }

  #readAlternatives(node: SchemaNode): Reading {
    node.kind = 'alternatives'
    const key = has(node.value, 'oneOf') ? 'oneOf' : 'anyOf'
    const alts = node.value[key]
    if (!Array.isArray(alts) || alts.length === 0) this.#fail('invalid_parameter', node.loc, key, 'must be a non-empty array of schemas')
    alts.forEach((alt, i) => this.#edge(node, alt, [key, i], String(i)))
    return { reads: new Set([key]), produces: null, why: (k) => `next to ${key} is ignored: llama.cpp's converter reads only the alternatives${k === 'anyOf' || k === 'oneOf' ? '' : ' (move it into each of them)'}` }
  }

  #readTypeUnion(node: SchemaNode, types: JsonValue[]): null {
    node.kind = 'type-union'
    if (types.length === 0) this.#fail('invalid_parameter', node.loc, 'type', 'must not be an empty array')
    const seen = new Set<string>()
    types.forEach((t, i) => {
      if (typeof t !== 'string' || !ALL.has(t as JsonType)) this.#fail('invalid_parameter', child(node.loc, 'type'), String(i), `must be one of ${TYPES.join(', ')}`)
      if (seen.has(t)) this.#fail('invalid_parameter', node.loc, 'type', `lists ${JSON.stringify(t)} twice`)
      seen.add(t)
      const variant = this.#newNode(node.value, node.loc, t, node.depth + 1)
      node.children.push({ node: variant, seg: String(i) })
    })
    return null // each copy is checked for what it reads
  }

  #readValues(node: SchemaNode, key: 'const' | 'enum', values: JsonValue): Reading {
    node.kind = key
    if (key === 'enum') {
      if (!Array.isArray(values) || values.length === 0) this.#fail('invalid_parameter', node.loc, 'enum', 'must be a non-empty array')
      if (values.length > MAX_ENUM_VALUES) this.#fail('unsupported_schema', node.loc, 'enum', `has ${values.length} values, more than the ${MAX_ENUM_VALUES} allowed`)
    }
    const list = values as JsonValue[]
    const bytes = list.reduce<number>((sum, x) => sum + Buffer.byteLength(JSON.stringify(x)), 0)
    if (bytes > MAX_ENUM_BYTES) this.#fail('unsupported_schema', node.loc, key, `is ${bytes} bytes as JSON, more than the ${MAX_ENUM_BYTES} allowed`)
    const reads = new Set<string>([key])
    const type = node.value.type
    // the grammar allows exactly the values; a type next to them is enforced only if every value has it
    if (type !== undefined) {
      const declared = new Set(Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : typeof type === 'string' ? [type] : [])
      const stray = list.findIndex((x) => !fits(jsonType(x), declared))
      if (stray < 0) reads.add('type')
      else if (this.#opts.strict) {
        const at = key === 'enum' ? child(child(node.loc, 'enum'), stray) : child(node.loc, 'const')
        this.#fail('unsupported_schema', at, null, `is not of the declared type ${JSON.stringify(type)}, yet llama.cpp's grammar would produce it`)
      }
    }
    const why = key === 'enum' ? (k: string) => (k === 'const' ? undefined : 'next to enum is not enforced: the grammar allows exactly the listed values') : () => 'next to const is not enforced: the grammar allows exactly the constant'
    return { reads, produces: new Set(list.map(jsonType)), why }
  }

  #readObject(node: SchemaNode): Reading {
    node.kind = 'object'
    const v = node.value
    const required = new Set((v.required as string[] | undefined) ?? [])
    if (has(v, 'properties')) {
      if (!isObject(v.properties)) this.#fail('invalid_parameter', node.loc, 'properties', 'must be an object of schemas')
      for (const [name, schema] of Object.entries(v.properties)) {
        if (name.length * 3 > MAX_NAME_BYTES && Buffer.byteLength(name) > MAX_NAME_BYTES) this.#fail('unsupported_schema', child(node.loc, 'properties'), name, `is a property name longer than ${MAX_NAME_BYTES} bytes`)
        const p = this.#edge(node, schema, ['properties', name], name)
        node.props.push({ name, node: p, required: required.has(name) })
      }
    }
    let additional = !has(v, 'properties')
    if (has(v, 'additionalProperties')) {
      const a = v.additionalProperties!
      if (isObject(a)) this.#edge(node, a, ['additionalProperties'], 'additional-value')
      else if (typeof a !== 'boolean') this.#fail('invalid_parameter', node.loc, 'additionalProperties', 'must be a boolean or a schema object')
      additional = a !== false
    }
    const optional = node.props.filter((p) => !p.required).length + (additional ? 1 : 0)
    if (optional > MAX_OPTIONAL_PROPERTIES) {
      this.#fail('unsupported_schema', node.loc, 'properties', `has ${optional} optional properties (additionalProperties counts as one), more than the ${MAX_OPTIONAL_PROPERTIES} allowed: llama.cpp's grammar for optional properties grows with the cube of their number`)
    }
    if (this.#opts.strict && additional && node.props.length) {
      // its rule for the other keys starts each branch with a class like [^"a], which lets a control character or a
      // lone backslash into the key unescaped (seen in sampled outputs)
      this.#fail('unsupported_schema', node.loc, 'additionalProperties', 'next to properties makes llama.cpp\'s grammar for the other keys admit unescaped control characters and backslashes (invalid JSON); use false, or a map without properties')
    }
    if (this.#opts.strict) {
      const defined = new Set(node.props.map((p) => p.name))
      const missing = [...required].find((r) => !defined.has(r))
      if (missing !== undefined) this.#fail('unsupported_schema', node.loc, 'required', `names ${JSON.stringify(missing)}, which properties does not define: llama.cpp's grammar would not require it`)
    }
    return {
      reads: new Set(['properties', 'required', 'additionalProperties']),
      produces: new Set(['object']),
      why: (k) => (k === 'allOf' ? 'next to properties or additionalProperties is ignored by llama.cpp\'s converter (merge the members into this schema)' : undefined),
    }
  }

  #readAllOf(node: SchemaNode): Reading {
    node.kind = 'all-of'
    const members = node.value.allOf
    if (!Array.isArray(members) || members.length === 0) this.#fail('invalid_parameter', node.loc, 'allOf', 'must be a non-empty array of schemas')
    members.forEach((m, i) => this.#edge(node, m, ['allOf', i], ''))
    this.#allOfs.push(node)
    return { reads: new Set(['allOf']), produces: null, why: () => 'next to allOf is ignored by llama.cpp\'s converter (move it into a member)' }
  }

  #readArray(node: SchemaNode): Reading {
    const v = node.value
    const key = has(v, 'items') ? 'items' : has(v, 'prefixItems') ? 'prefixItems' : null
    const reads = new Set(['items', 'minItems', 'maxItems'])
    const why = (k: string) => (k === 'prefixItems' ? 'next to items is ignored (llama.cpp\'s converter uses items)' : undefined)
    const items = key === null ? undefined : v[key]
    if (key) reads.add(key)
    if (Array.isArray(items)) {
      node.kind = 'tuple'
      items.forEach((s, i) => this.#edge(node, s, [key!, i], `tuple-${i}`))
      if (this.#opts.strict) {
        const n = items.length
        if ((has(v, 'minItems') && (v.minItems as number) > n) || (has(v, 'maxItems') && (v.maxItems as number) < n)) {
          this.#fail('unsupported_schema', node.loc, has(v, 'minItems') && (v.minItems as number) > n ? 'minItems' : 'maxItems', `contradicts the ${n} items of ${key}: llama.cpp's grammar produces exactly ${n}`)
        }
      }
      return { reads, produces: new Set(['array']), why }
    }
    node.kind = 'array'
    if (typeof items === 'boolean') {
      if (items === false && key === 'items' && has(v, 'prefixItems')) {
        this.#fail('unsupported_schema', node.loc, 'items', 'false next to prefixItems is not accepted by llama.cpp\'s converter; drop it: a prefixItems array already allows exactly its items there')
      }
      this.#fail('unsupported_schema', node.loc, key!, `is the boolean schema ${items}, which llama.cpp's converter does not accept; use {} for true`)
    }
    if (items !== undefined) this.#edge(node, items, [key!], 'item')
    const min = (v.minItems as number | undefined) ?? 0
    const max = v.maxItems as number | undefined
    for (const [k, n] of [['minItems', min], ['maxItems', max ?? 0]] as const) {
      if (n > MAX_ARRAY_ITEMS_BOUND) this.#fail('unsupported_schema', node.loc, k, `is ${n}, more than the ${MAX_ARRAY_ITEMS_BOUND} llama.cpp's grammar parser can repeat an array item`)
    }
    if (max !== undefined && min > max) this.#fail('invalid_parameter', node.loc, 'minItems', `is greater than maxItems (${max})`)
    node.repetitions = Math.max(min, max ?? 0)
    return { reads, produces: new Set(['array']), why }
  }
}

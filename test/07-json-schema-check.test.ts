// JSON schema checks without a model: real-world schemas pass, what llama.cpp's converter would ignore is
// refused in strict mode (naming the place), what it would crash, hang or mis-convert on is refused always,
// and every limit holds, with no stack overflow on any input.
import t, { type Test } from 'tap'
import { errorCodes, HearthError } from '../lib/errors.js'
import { checkJsonTextLimits, checkJsonValueLimits, JSON_VALUE_LIMITS } from '../lib/json-limits.js'
import {
  checkSchema, MAX_ARRAY_ITEMS_BOUND, MAX_ENUM_BYTES, MAX_ENUM_VALUES, MAX_GRAMMAR_REPETITIONS, MAX_NAME_BYTES, MAX_OPTIONAL_PROPERTIES,
  MAX_PATTERN_LENGTH, MAX_PATTERN_NESTED_REPETITION, MAX_REF_LENGTH, MAX_REFS, MAX_REPETITION, MAX_RULE_NAME_BYTES, MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH, MAX_SCHEMA_JSON_DEPTH, MAX_SCHEMA_NODES,
} from '../lib/json-schema-check.js'
import { analyzePattern } from '../lib/json-schema-pattern.js'

const P = 'response_format.json_schema.schema'
type Json = Record<string, unknown>

function errorOf(fn: () => void): HearthError | null {
  try {
    fn()
    return null
  } catch (e) {
    if (e instanceof HearthError) return e
    throw e
  }
}

function accepts(t: Test, schema: unknown, strict: boolean, what: string): void {
  const e = errorOf(() => checkSchema(schema, { param: P, strict }))
  t.equal(e, null, `${what} (${strict ? 'strict' : 'not strict'})${e ? `: ${e.message}` : ''}`)
}

/** Refused with `code`, naming `path` (below P) as param and at the start of the message. */
function refuses(t: Test, schema: unknown, strict: boolean, code: string, path: string, message?: RegExp): void {
  const param = path ? `${P}${path.startsWith('[') ? '' : '.'}${path}` : P
  const e = errorOf(() => checkSchema(schema, { param: P, strict }))
  if (!e) {
    t.fail(`expected ${code} at ${param}, but it was accepted`)
    return
  }
  t.match({ code: e.code, param: e.param, status: e.status, type: e.type }, { code, param, status: 400, type: 'invalid_request_error' }, e.message)
  t.ok(e.message.startsWith(param), 'the message names the place')
  if (message) t.match(e.message, message)
}

const obj = (properties: Json, extra: Json = {}): Json => ({ type: 'object', properties, required: Object.keys(properties), additionalProperties: false, ...extra })

t.test('unsupported_schema is a registered 400', async (t) => {
  t.match(errorCodes.unsupported_schema, { status: 400, type: 'invalid_request_error' })
  t.type(errorCodes.unsupported_schema.description, 'string')
})

t.test('real-world schemas are accepted in both modes', async (t) => {
  // zod-to-json-schema output (what LangChain sends): $schema, additionalProperties false, an optional field
  const zod = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, tags: { type: 'array', items: { type: 'string' }, maxItems: 5 } },
    required: ['name', 'tags'],
    additionalProperties: false,
    $schema: 'http://json-schema.org/draft-07/schema#',
  }
  // OpenAI's structured-output examples: steps through $defs, and a recursive linked list through anyOf with null
  const steps = {
    type: 'object',
    properties: { steps: { type: 'array', items: { $ref: '#/$defs/step' } }, final_answer: { type: 'string' } },
    $defs: { step: obj({ explanation: { type: 'string' }, output: { type: 'string' } }) },
    required: ['steps', 'final_answer'],
    additionalProperties: false,
  }
  const linkedList = {
    type: 'object',
    properties: { linked_list: { $ref: '#/$defs/linked_list_node' } },
    $defs: { linked_list_node: obj({ value: { type: 'number' }, next: { anyOf: [{ $ref: '#/$defs/linked_list_node' }, { type: 'null' }] } }) },
    required: ['linked_list'],
    additionalProperties: false,
  }
  const tree = {
    $defs: { node: obj({ value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } }) },
    $ref: '#/$defs/node',
  }
  // Pydantic v2: titles, descriptions, defaults, Optional as anyOf with null, an enum through definitions
  const pydantic = {
    title: 'Order',
    type: 'object',
    definitions: { Color: { title: 'Color', enum: ['red', 'green'], type: 'string' } },
    properties: {
      id: { title: 'Id', type: 'string', format: 'uuid' },
      note: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null, title: 'Note' },
      color: { $ref: '#/definitions/Color', description: 'the color' },
      placed: { type: 'string', format: 'date-time', description: 'when' },
    },
    required: ['id', 'note', 'color', 'placed'],
    additionalProperties: false,
  }
  const nested = obj({
    orders: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: obj({
        sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4}$' },
        qty: { type: 'integer', minimum: 1, maximum: 99 },
        status: { enum: ['open', 'shipped', null] },
        lines: { type: 'array', items: obj({ text: { type: ['string', 'null'], maxLength: 200 } }) },
        where: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'number' }] },
      }),
    },
    kind: { const: 'order' },
  })
  const merged = { allOf: [{ $ref: '#/$defs/Base' }, { type: 'object', properties: { extra: { type: 'boolean' } } }], $defs: { Base: obj({ id: { type: 'integer' } }) } }
  for (const [what, s] of Object.entries({ zod, steps, linkedList, tree, pydantic, nested, merged })) {
    accepts(t, s, true, what)
    accepts(t, s, false, what)
  }
  accepts(t, {}, true, 'the empty schema (any JSON)')
  accepts(t, { type: 'integer', maxLength: 5, items: { not: {} } }, false, 'keywords for other types pass untouched')
  accepts(t, { type: 'integer', maxLength: 5 }, true, 'maxLength on an integer constrains nothing')
  accepts(t, { type: ['string', 'null'], maxLength: 5, minimum: 3 }, true, 'each type of a union reads its own keywords')
  accepts(t, { type: 'string', pattern: '^([0-9]{1,3}\\.){3}[0-9]{1,3}$' }, true, 'an IPv4 pattern')
  accepts(t, { type: 'object', additionalProperties: { type: 'integer' } }, true, 'a map of integers')
})

t.test('strict refuses each keyword llama.cpp would ignore, naming it; non-strict keeps it unenforced', async (t) => {
  const cases: Array<[string, Json, string]> = [
    ['not', { type: 'object', properties: { age: { type: 'integer', not: { const: 3 } } } }, 'properties.age.not'],
    ['if/then/else', { type: 'object', if: { required: ['a'] }, then: { required: ['b'] }, else: {} }, 'if'],
    ['uniqueItems', { type: 'array', items: { type: 'string' }, uniqueItems: true }, 'uniqueItems'],
    ['multipleOf', { type: 'object', properties: { age: { type: 'integer', multipleOf: 2 } } }, 'properties.age.multipleOf'],
    ['patternProperties', { type: 'object', patternProperties: { '^x-': { type: 'string' } } }, 'patternProperties'],
    ['minProperties', { type: 'object', minProperties: 1 }, 'minProperties'],
    ['contains', { type: 'array', contains: { const: 1 } }, 'contains'],
    ['dependentRequired', { type: 'object', properties: { a: {} }, dependentRequired: { a: ['b'] } }, 'dependentRequired'],
    ['nullable (OpenAPI)', { type: 'string', nullable: true }, 'nullable'],
    ['an unknown format', { type: 'object', properties: { mail: { type: 'string', format: 'email' } } }, 'properties.mail.format'],
    ['a format without a type', { format: 'uri' }, 'format'],
    ['bounds on a number', { type: 'object', properties: { p: { type: 'number', minimum: 0, maximum: 1 } } }, 'properties.p.minimum'],
    ['exclusiveMinimum next to minimum', { type: 'integer', minimum: 0, exclusiveMinimum: 5 }, 'exclusiveMinimum'],
    ['a draft-4 boolean exclusiveMinimum next to minimum', { type: 'integer', minimum: 0, exclusiveMinimum: true }, 'exclusiveMinimum'],
    ['a $ref sibling', { $defs: { a: { type: 'string' } }, $ref: '#/$defs/a', maxLength: 3 }, 'maxLength'],
    ['a type next to anyOf', { type: 'string', anyOf: [{ format: 'date' }, { format: 'time' }] }, 'type'],
    ['anyOf next to oneOf', { oneOf: [{ type: 'string' }], anyOf: [{ type: 'null' }] }, 'anyOf'],
    ['maxLength next to pattern', { type: 'string', pattern: '^a+$', maxLength: 3 }, 'maxLength'],
    ['maxLength next to a format', { type: 'string', format: 'date', maxLength: 3 }, 'maxLength'],
    ['an unsupported pattern (\\d)', { type: 'string', pattern: '^\\d{3}$' }, 'pattern'],
    ['an unanchored pattern', { type: 'string', pattern: 'abc' }, 'pattern'],
    ['a lookahead', { type: 'string', pattern: '^(?=a)a$' }, 'pattern'],
    ['required naming no property', { type: 'object', properties: { a: {} }, required: ['b'] }, 'required'],
    ['prefixItems next to items', { type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'integer' } }, 'prefixItems'],
    ['a tuple longer than maxItems', { type: 'array', items: [{}, {}, {}], maxItems: 2 }, 'maxItems'],
    ['allOf next to properties', { type: 'object', properties: { a: {} }, allOf: [{ type: 'object', properties: { b: {} } }] }, 'allOf'],
    ['anyOf inside allOf', { allOf: [{ anyOf: [obj({ a: {} }), obj({ b: {} })] }] }, 'allOf[0]'],
    ['an enum value of another type', { type: 'string', enum: ['a', 3] }, 'enum[1]'],
    ['a const of another type', { type: 'integer', const: 'x' }, 'const'],
    ['maxLength next to an enum', { type: 'string', enum: ['abc'], maxLength: 1 }, 'maxLength'],
    ['enum next to const', { const: 'a', enum: ['a', 'b'] }, 'enum'],
    ['a bound on an untyped schema', { minimum: 3 }, 'minimum'],
    ['allOf on a null in a type union', { type: ['object', 'null'], allOf: [obj({ a: {} })] }, 'allOf'],
    // llama.cpp writes what a pattern matches into the JSON string unescaped (sampled outputs were invalid JSON)
    ['a pattern with . (any character, quotes included)', { type: 'string', pattern: '^.{1,4}$' }, 'pattern'],
    ['a class holding " and \\', { type: 'string', pattern: '^[ -~]+$' }, 'pattern'],
    ['a negated class that lets " through', { type: 'string', pattern: '^[^a]$' }, 'pattern'],
    ['a literal quote', { type: 'string', pattern: '^say "hi"$' }, 'pattern'],
    ['a tab escape', { type: 'string', pattern: '^a\\tb$' }, 'pattern'],
    // its rule for other keys lets a control character or a lone backslash start a key (sampled outputs again)
    ['additionalProperties true next to properties', { type: 'object', properties: { a: {} }, additionalProperties: true }, 'additionalProperties'],
    ['an additionalProperties schema next to properties', { type: 'object', properties: { a: {} }, additionalProperties: { type: 'integer' } }, 'additionalProperties'],
    // built as anyOf: a value matching two alternatives passes the grammar
    ['oneOf with overlapping alternatives', { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] }, 'oneOf'],
    ['oneOf over integer and number', { oneOf: [{ type: 'integer' }, { type: 'number' }] }, 'oneOf'],
  ]
  for (const [what, schema, path] of cases) {
    t.test(what, async (t) => {
      refuses(t, schema, true, 'unsupported_schema', path)
      accepts(t, schema, false, what)
    })
  }
  refuses(t, { type: 'object', properties: { age: { type: 'integer', multipleOf: 2 } } }, true, 'unsupported_schema', 'properties.age.multipleOf', /multipleOf is not supported/)
  refuses(t, { type: 'string', pattern: '^.+$' }, true, 'unsupported_schema', 'pattern', /invalid JSON.*\[\^"/)
})

t.test('strict accepts what stays valid JSON and exclusive', async (t) => {
  accepts(t, { type: 'string', pattern: '^[^"\\\\\\x00-\\x1F]{1,4}$' }, true, 'any character but the ones JSON escapes')
  accepts(t, { type: 'string', pattern: '^a\\.b\\-c[\\x20-\\x21\\x23-\\x5B]$' }, true, 'escaped punctuation, a class around the quote')
  accepts(t, { oneOf: [{ type: 'string' }, { type: 'null' }, { type: 'array', items: { type: 'integer' } }] }, true, 'oneOf told apart by type')
  // Pydantic's discriminated union: oneOf over $refs, each object with a required const tag
  const pet = (kind: string, extra: Json) => obj({ kind: { const: kind }, ...extra })
  const union = { oneOf: [{ $ref: '#/$defs/Cat' }, { $ref: '#/$defs/Dog' }], discriminator: { propertyName: 'kind' }, $defs: { Cat: pet('cat', { lives: { type: 'integer' } }), Dog: pet('dog', { good: { type: 'boolean' } }) } }
  accepts(t, union, true, 'a discriminated union')
  refuses(t, { ...union, $defs: { Cat: pet('cat', {}), Dog: pet('cat', {}) } }, true, 'unsupported_schema', 'oneOf', /alternatives 0 and 1/)
  accepts(t, { type: 'object', additionalProperties: { type: 'integer' } }, true, 'a map without properties')
  const events = Array.from({ length: 40 }, (_, i) => obj({ type: { const: `event${i}` }, at: { type: 'integer' } }))
  accepts(t, { oneOf: [{ type: 'null' }, { type: 'string' }, ...events] }, true, '40 objects told apart by one property, with a null and a string')
  const untagged = Array.from({ length: 40 }, (_, i) => obj({ [`field${i}`]: { type: 'integer' } }))
  refuses(t, { oneOf: untagged }, true, 'unsupported_schema', 'oneOf', /no required property whose const values tell them all apart/)
  refuses(t, { oneOf: [...events.slice(0, 5), { type: 'object' }] }, true, 'unsupported_schema', 'oneOf', /alternatives 0 and 5 can both match/)
})

t.test('always refused: what the converter fails, crashes, hangs on, or turns into a grammar contradicting the schema', async (t) => {
  const cases: Array<[string, unknown, string, string, RegExp?]> = [
    ['"#" (the whole schema)', { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#' } } } }, 'unsupported_schema', 'properties.kids.items.$ref', /\$defs/],
    ['a remote $ref', { $ref: 'https://example.com/s.json' }, 'unsupported_schema', '$ref'],
    ['an unresolvable $ref', { $ref: '#/$defs/missing' }, 'invalid_parameter', '$ref', /cannot be resolved/],
    ['a $ref to a non-schema', { $defs: { a: 3 }, $ref: '#/$defs/a' }, 'invalid_parameter', '$defs.a'],
    ['a non-decimal array index', { anyOf: [{ type: 'string' }], properties: {}, $ref: '#/anyOf/00' }, 'unsupported_schema', '$ref'],
    ['two $refs with one rule name', { $defs: { a_b: {}, 'a.b': {} }, type: 'object', properties: { x: { $ref: '#/$defs/a_b' }, y: { $ref: '#/$defs/a.b' } } }, 'unsupported_schema', 'properties.y.$ref', /same grammar rule name/],
    ['a $ref cycle', { $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, 'unsupported_schema', '$defs.a', /left recursion/],
    ['anyOf recursing first', { $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' }, 'unsupported_schema', '$defs.a', /left recursion/],
    // the converter segfaults on these two (measured): allOf members are expanded inline, through $ref
    ['allOf recursing through $ref', { $defs: { O: { type: 'object', properties: { a: { allOf: [{ $ref: '#/$defs/O' }] } } } }, $ref: '#/$defs/O' }, 'unsupported_schema', '$defs.O.properties.a', /recurse forever/],
    ['allOf over a $ref-only cycle', { $defs: { a: { allOf: [{ $ref: '#/$defs/b' }] }, b: { $ref: '#/$defs/c' }, c: { $ref: '#/$defs/b' } }, $ref: '#/$defs/a' }, 'unsupported_schema', '$defs.b'],
    // llama.cpp's grammar parser loops forever on a reversed repetition (measured)
    ['minLength above maxLength', { type: 'string', minLength: 5, maxLength: 3 }, 'invalid_parameter', 'minLength'],
    ['minItems above maxItems', { type: 'array', minItems: 5, maxItems: 3 }, 'invalid_parameter', 'minItems'],
    ['a reversed pattern count', { type: 'string', pattern: '^a{5,3}$' }, 'invalid_parameter', 'pattern', /\{5,3\}/],
    ['an invalid pattern', { type: 'string', pattern: '^(a$' }, 'invalid_parameter', 'pattern', /unbalanced/],
    ['a quantifier after |', { type: 'string', pattern: '^a|*$' }, 'invalid_parameter', 'pattern', /nothing to repeat/],
    ['an empty integer range', { type: 'integer', minimum: 5, maximum: 3 }, 'invalid_parameter', 'minimum'],
    ['an integer bound past 2^53', { type: 'integer', minimum: 1e19 }, 'unsupported_schema', 'minimum'],
    ['a draft-4 exclusiveMinimum alone', { type: 'integer', exclusiveMinimum: true }, 'unsupported_schema', 'exclusiveMinimum'],
    ['allOf on a string (becomes "{}")', { type: 'string', allOf: [{ pattern: '^a$' }] }, 'unsupported_schema', 'allOf'],
    ['allOf over strings', { allOf: [{ type: 'string' }, { maxLength: 3 }] }, 'unsupported_schema', 'allOf[0]', /only merges object members/],
    ['allOf mixing an enum and an object', { allOf: [{ enum: ['a'] }, obj({ a: {} })] }, 'unsupported_schema', 'allOf[0]'],
    ['allOf defining a property twice', { allOf: [obj({ a: { type: 'string' } }), obj({ a: { type: 'integer' } })] }, 'unsupported_schema', 'allOf', /twice/],
    ['allOf of disjoint enums', { allOf: [{ enum: ['a'] }, { enum: ['b'] }] }, 'invalid_parameter', 'allOf'],
    ['a boolean subschema', { type: 'object', properties: { a: true } }, 'unsupported_schema', 'properties.a', /use \{\}/],
    ['items false next to prefixItems', { type: 'array', prefixItems: [{ type: 'string' }], items: false }, 'unsupported_schema', 'items'],
    ['a schema that is not an object', { type: 'object', properties: { a: 'string' } }, 'invalid_parameter', 'properties.a'],
    ['an unknown type', { type: 'text' }, 'invalid_parameter', 'type'],
    ['a type listed twice', { type: ['object', 'object'], properties: {} }, 'invalid_parameter', 'type'],
    ['an empty anyOf', { anyOf: [] }, 'invalid_parameter', 'anyOf'],
    ['an empty enum', { enum: [] }, 'invalid_parameter', 'enum'],
    ['a negative maxLength', { type: 'string', maxLength: -1 }, 'invalid_parameter', 'maxLength'],
    ['required as a boolean (draft 3)', { type: 'object', properties: { a: { type: 'string', required: true } } }, 'invalid_parameter', 'properties.a.required'],
    ['additionalProperties as a number', { type: 'object', additionalProperties: 3 }, 'invalid_parameter', 'additionalProperties'],
    ['the root not an object', [{ type: 'string' }], 'invalid_parameter', ''],
    ['a function inside', { type: 'object', properties: { a: { type: 'string', default: () => 1 } } }, 'invalid_parameter', 'properties.a.default'],
    ['NaN inside', { type: 'integer', maximum: Number.NaN }, 'invalid_parameter', 'maximum'],
    ['a Date inside', { type: 'string', default: new Date(0) }, 'invalid_parameter', 'default'],
  ]
  for (const [what, schema, code, path, message] of cases) {
    t.test(what, async (t) => {
      refuses(t, schema, false, code, path, message)
      refuses(t, schema, true, code, path, message)
    })
  }
})

t.test('undefined members are skipped as JSON.stringify skips them; a shared object is checked where each use sits', async (t) => {
  accepts(t, { type: 'string', description: undefined }, true, 'undefined member')
  const id = { type: 'string', maxLength: MAX_REPETITION }
  const shared = { type: 'object', properties: { a: id, b: id, c: id, d: id, e: id, f: id }, required: ['a', 'b', 'c', 'd', 'e', 'f'] }
  refuses(t, shared, false, 'unsupported_schema', '', /grammar repetitions/)
})

t.test('limits', async (t) => {
  t.test('MAX_SCHEMA_BYTES', async (t) => {
    const base = { type: 'string', description: '' }
    const overhead = Buffer.byteLength(JSON.stringify(base))
    accepts(t, { ...base, description: 'x'.repeat(MAX_SCHEMA_BYTES - overhead) }, true, 'exactly at the limit')
    refuses(t, { ...base, description: 'x'.repeat(MAX_SCHEMA_BYTES - overhead + 1) }, false, 'unsupported_schema', '', /larger than/)
    refuses(t, { ...base, description: 'é'.repeat((MAX_SCHEMA_BYTES - overhead) / 2 + 1) }, false, 'unsupported_schema', '', /larger than/)
  })

  t.test('MAX_SCHEMA_JSON_DEPTH: 10,000 levels from JSON.parse, refused without a stack overflow', async (t) => {
    const deepProps = JSON.parse('{"type":"object","properties":{"a":'.repeat(10_000) + '{}' + '}}'.repeat(10_000)) as unknown
    refuses(t, deepProps, false, 'unsupported_schema', '', undefined)
    const deepConst = JSON.parse('{"const":' + '['.repeat(200_000) + ']'.repeat(200_000) + '}') as unknown
    refuses(t, deepConst, true, 'unsupported_schema', 'const' + '[0]'.repeat(MAX_SCHEMA_JSON_DEPTH - 1), /nested deeper than 256 levels/)
    const atLimit = { const: JSON.parse('['.repeat(MAX_SCHEMA_JSON_DEPTH - 1) + ']'.repeat(MAX_SCHEMA_JSON_DEPTH - 1)) as unknown }
    accepts(t, atLimit, true, 'a const exactly at the depth limit')
    const cyclic: Json = { type: 'object' }
    cyclic.properties = { self: cyclic }
    refuses(t, cyclic, false, 'unsupported_schema', new Array(MAX_SCHEMA_JSON_DEPTH / 2).fill('properties.self').join('.'), /nested deeper/)
  })

  t.test('MAX_SCHEMA_DEPTH, in the tree and through $ref', async (t) => {
    let s: Json = { type: 'string' }
    for (let i = 1; i < MAX_SCHEMA_DEPTH; i++) s = { type: 'array', items: s }
    accepts(t, s, true, `${MAX_SCHEMA_DEPTH} levels`)
    refuses(t, { type: 'array', items: s }, false, 'unsupported_schema', '.items'.repeat(MAX_SCHEMA_DEPTH).slice(1), /deeper than 128 subschemas/)
    // 80 definitions, each an object whose property refers to the next: 160 levels when built first-use inline
    const defs: Json = {}
    for (let i = 0; i < 80; i++) defs[`d${i}`] = i < 79 ? obj({ next: { $ref: `#/$defs/d${i + 1}` } }) : { type: 'string' }
    refuses(t, { $defs: defs, $ref: '#/$defs/d0' }, false, 'unsupported_schema', '', /levels of nesting counted through \$ref/)
    const fewer: Json = {}
    for (let i = 0; i < 40; i++) fewer[`d${i}`] = i < 39 ? obj({ next: { $ref: `#/$defs/d${i + 1}` } }) : { type: 'string' }
    accepts(t, { $defs: fewer, $ref: '#/$defs/d0' }, true, '40 chained definitions')
  })

  t.test('MAX_SCHEMA_NODES, counted as the converter visits', async (t) => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'integer' }]))
    accepts(t, obj(many(MAX_SCHEMA_NODES - 1)), true, 'one object with 4,999 properties')
    refuses(t, obj(many(MAX_SCHEMA_NODES)), false, 'unsupported_schema', `properties.p${MAX_SCHEMA_NODES - 1}`, /5000-subschema limit/)
    // allOf visits its members' properties again each time: 90 allOfs over one 60-property definition
    const users = Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`u${i}`, { allOf: [{ $ref: '#/$defs/Big' }] }]))
    refuses(t, { $defs: { Big: obj(many(60)) }, ...obj(users) }, false, 'unsupported_schema', '', /subschema visits/)
  })

  t.test('MAX_REFS', async (t) => {
    const defs = Object.fromEntries(Array.from({ length: MAX_REFS + 1 }, (_, i) => [`d${i}`, { type: 'integer' }]))
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { $ref: `#/$defs/d${i}` }]))
    accepts(t, { $defs: defs, ...obj(props(MAX_REFS)) }, true, `${MAX_REFS} distinct refs`)
    refuses(t, { $defs: defs, ...obj(props(MAX_REFS + 1)) }, false, 'unsupported_schema', `properties.p${MAX_REFS}.$ref`, /distinct \$ref/)
  })

  t.test('MAX_REF_LENGTH', async (t) => {
    const key = 'k'.repeat(MAX_REF_LENGTH - '#/$defs/'.length)
    accepts(t, { $defs: { [key]: { type: 'string' } }, $ref: `#/$defs/${key}` }, true, 'a $ref at the limit')
    refuses(t, { $defs: { [key + 'k']: { type: 'string' } }, $ref: `#/$defs/${key}k` }, false, 'unsupported_schema', '$ref', /longer than 1024/)
  })

  t.test('MAX_NAME_BYTES', async (t) => {
    accepts(t, obj({ ['n'.repeat(MAX_NAME_BYTES)]: {} }), true, 'a name at the limit')
    refuses(t, obj({ ['n'.repeat(MAX_NAME_BYTES + 1)]: {} }), false, 'unsupported_schema', `properties.${'n'.repeat(MAX_NAME_BYTES + 1)}`)
    const wide = 'é'.repeat(MAX_NAME_BYTES / 2 + 1) // 2 bytes each in UTF-8
    refuses(t, obj({ [wide]: {} }), false, 'unsupported_schema', `properties[${JSON.stringify(wide)}]`, /bytes/)
  })

  t.test('MAX_OPTIONAL_PROPERTIES', async (t) => {
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string' }]))
    accepts(t, { type: 'object', properties: props(MAX_OPTIONAL_PROPERTIES), additionalProperties: false }, true, '64 optional')
    refuses(t, { type: 'object', properties: props(MAX_OPTIONAL_PROPERTIES + 1), additionalProperties: false }, false, 'unsupported_schema', 'properties', /optional properties/)
    refuses(t, { type: 'object', properties: props(MAX_OPTIONAL_PROPERTIES), additionalProperties: { type: 'integer' } }, false, 'unsupported_schema', 'properties', /additionalProperties counts as one/)
    accepts(t, { type: 'object', properties: props(MAX_OPTIONAL_PROPERTIES) }, true, 'with properties, no additionalProperties means none (as in llama.cpp)')
    accepts(t, obj(props(500)), true, '500 required properties')
  })

  t.test('MAX_ENUM_VALUES and MAX_ENUM_BYTES', async (t) => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`)
    accepts(t, { enum: values(MAX_ENUM_VALUES) }, true, '1,000 values')
    refuses(t, { enum: values(MAX_ENUM_VALUES + 1) }, false, 'unsupported_schema', 'enum', /1001 values/)
    refuses(t, { const: 'x'.repeat(MAX_ENUM_BYTES) }, false, 'unsupported_schema', 'const', /bytes/)
    refuses(t, { enum: ['x'.repeat(MAX_ENUM_BYTES / 2), 'y'.repeat(MAX_ENUM_BYTES / 2)] }, false, 'unsupported_schema', 'enum', /bytes/)
  })

  t.test('MAX_PATTERN_LENGTH', async (t) => {
    accepts(t, { type: 'string', pattern: `^${'a'.repeat(MAX_PATTERN_LENGTH - 2)}$` }, true, 'a pattern at the limit')
    refuses(t, { type: 'string', pattern: `^${'a'.repeat(MAX_PATTERN_LENGTH - 1)}$` }, false, 'unsupported_schema', 'pattern', /longer than/)
  })

  t.test('MAX_REPETITION: minLength, maxLength (1,000,000 too), pattern counts', async (t) => {
    accepts(t, { type: 'string', maxLength: MAX_REPETITION }, true, 'maxLength 2000')
    refuses(t, { type: 'string', maxLength: MAX_REPETITION + 1 }, false, 'unsupported_schema', 'maxLength', /2001/)
    refuses(t, obj({ bio: { type: 'string', maxLength: 1_000_000 } }), false, 'unsupported_schema', 'properties.bio.maxLength')
    refuses(t, { type: 'string', minLength: MAX_REPETITION + 1 }, false, 'unsupported_schema', 'minLength')
    refuses(t, { type: 'string', pattern: `^x{0,${MAX_REPETITION + 1}}$` }, false, 'unsupported_schema', 'pattern', /2001 times/)
    accepts(t, { type: 'integer', maxLength: 1_000_000 }, true, 'a maxLength that constrains nothing is not a grammar')
  })

  t.test('MAX_ARRAY_ITEMS_BOUND', async (t) => {
    accepts(t, { type: 'array', items: { type: 'integer' }, maxItems: MAX_ARRAY_ITEMS_BOUND }, true, '667 items')
    refuses(t, { type: 'array', items: { type: 'integer' }, maxItems: MAX_ARRAY_ITEMS_BOUND + 1 }, false, 'unsupported_schema', 'maxItems')
    refuses(t, { type: 'array', minItems: MAX_ARRAY_ITEMS_BOUND + 1 }, false, 'unsupported_schema', 'minItems')
  })

  t.test('MAX_PATTERN_NESTED_REPETITION', async (t) => {
    accepts(t, { type: 'string', pattern: '^(a{0,4}){0,4}$' }, true, 'a product of 16')
    accepts(t, { type: 'string', pattern: '^(a{0,64})?$' }, true, 'an optional group is not a repetition')
    refuses(t, { type: 'string', pattern: '^(a{0,4}){0,5}$' }, false, 'unsupported_schema', 'pattern', /product of 20/)
    refuses(t, { type: 'string', pattern: '^(a{0,20}){0,20}$' }, false, 'unsupported_schema', 'pattern', /product of 400/)
    refuses(t, { type: 'string', pattern: '^((a+)*){0,5}$' }, false, 'unsupported_schema', 'pattern', new RegExp(`beyond the ${MAX_PATTERN_NESTED_REPETITION}`))
  })

  t.test('MAX_GRAMMAR_REPETITIONS', async (t) => {
    const strings = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, { type: 'string', maxLength: MAX_REPETITION }]))
    const n = MAX_GRAMMAR_REPETITIONS / MAX_REPETITION
    accepts(t, obj(strings(n)), true, `${n} strings of up to 2,000 characters`)
    refuses(t, obj(strings(n + 1)), false, 'unsupported_schema', '', /grammar repetitions/)
  })

  t.test('MAX_RULE_NAME_BYTES', async (t) => {
    // 60 nested objects with 250-byte names, then 100 leaves: each leaf's rule name is ~15 KB long
    const name = 'n'.repeat(250)
    let s: Json = obj(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`leaf${i}`, { type: 'integer' }])))
    for (let i = 0; i < 60; i++) s = obj({ [name]: s })
    t.ok(Buffer.byteLength(JSON.stringify(s)) < MAX_SCHEMA_BYTES, 'small as text')
    refuses(t, s, false, 'unsupported_schema', '', new RegExp(`bytes of grammar rule names.*${MAX_RULE_NAME_BYTES}`))
  })
})

t.test('the pattern analyzer mirrors the converter', async (t) => {
  t.match(analyzePattern('^[A-Z]{3}-(x|y)*\\.$'), { status: 'ok', counts: [3, 1], nestedWeight: 0, jsonUnsafe: null })
  t.match(analyzePattern('^x.y$'), { jsonUnsafe: '.' })
  t.match(analyzePattern('^[a-z\\x00]$'), { jsonUnsafe: '[a-z\\x00]' })
  t.match(analyzePattern('^[^"\\\\\\x00-\\x1F]$'), { jsonUnsafe: null })
  t.match(analyzePattern('^a\\\\b$'), { jsonUnsafe: '\\\\' })
  t.match(analyzePattern('^\\u00e9\\x41\\t\\[$'), { status: 'ok' })
  t.match(analyzePattern('^(?:ab)+c?$'), { status: 'ok' })
  t.match(analyzePattern('^\\w+$'), { status: 'unsupported', reason: /\\w/ })
  t.match(analyzePattern('^[\\d]$'), { status: 'unsupported', reason: /character class/ })
  t.match(analyzePattern('^a]$'), { status: 'unsupported', reason: /unsupported character/ })
  t.match(analyzePattern('^a$b$'), { status: 'unsupported', reason: /anchor/ })
  t.match(analyzePattern('^(?<n>a)$'), { status: 'unsupported', reason: /group/ })
  t.match(analyzePattern('^[ab$'), { status: 'invalid', reason: /unterminated/ })
  t.match(analyzePattern('^a)$'), { status: 'invalid', reason: /unbalanced/ })
  t.match(analyzePattern('^*$'), { status: 'invalid', reason: /nothing to repeat/ })
  t.match(analyzePattern('^a\\$'), { status: 'invalid', reason: /trailing backslash/ }) // the anchor is the last `$`
  t.match(analyzePattern('^a\\$$'), { status: 'ok' }) // an escaped dollar, then the anchor
  t.match(analyzePattern('^' + '('.repeat(101) + 'a' + ')'.repeat(101) + '$'), { status: 'unsupported', reason: /too deep/ })
})

t.test('checkJsonValueLimits: wire JSON refused before anything recursive sees it', async (t) => {
  const deep = JSON.parse('['.repeat(10_000) + ']'.repeat(10_000)) as unknown
  const e = errorOf(() => checkJsonValueLimits(deep, 'messages[2].content'))
  t.match(e, { code: 'invalid_parameter', status: 400 })
  t.match(e?.param, /^messages\[2\]\.content(\[0\])+$/)
  t.match(e?.message, `nested deeper than ${JSON_VALUE_LIMITS.maxDepth} levels`)
  t.equal(errorOf(() => checkJsonValueLimits({ a: [1, { b: 'x' }] }, 'v', { maxDepth: 3, maxBytes: 100 })), null)
  t.match(errorOf(() => checkJsonValueLimits({ a: [1, { b: [] }] }, 'v', { maxDepth: 3, maxBytes: 100 })), { param: 'v.a[1].b' })
  const value = { text: 'é"\n', n: [1.5, -0, null, true] }
  const exact = Buffer.byteLength(JSON.stringify(value))
  t.equal(errorOf(() => checkJsonValueLimits(value, 'v', { maxDepth: 5, maxBytes: exact })), null, 'exactly JSON.stringify\'s size')
  t.match(errorOf(() => checkJsonValueLimits(value, 'v', { maxDepth: 5, maxBytes: exact - 1 })), { code: 'invalid_parameter', param: 'v', message: /larger than/ })
  t.equal(errorOf(() => checkJsonValueLimits('x'.repeat(JSON_VALUE_LIMITS.maxBytes - 2), 'v')), null, 'a string of 4 MiB with its quotes')
  t.match(errorOf(() => checkJsonValueLimits('x'.repeat(JSON_VALUE_LIMITS.maxBytes - 1), 'v')), { message: /larger than 4194304 bytes/ })
  t.match(errorOf(() => checkJsonValueLimits({ a: 1n }, 'v')), { param: 'v.a', message: /bigint/ })
  t.match(errorOf(() => checkJsonValueLimits([Number.POSITIVE_INFINITY], 'v')), { param: 'v[0]' })
})

t.test('checkJsonTextLimits: depth and size of JSON text without parsing it', async (t) => {
  t.equal(errorOf(() => checkJsonTextLimits('{"a":"[[[[[[[[\\"]]"}', 'args', { maxDepth: 1, maxBytes: 100 })), null, 'brackets inside strings do not count')
  t.match(errorOf(() => checkJsonTextLimits('{"a":[{}]}', 'args', { maxDepth: 2, maxBytes: 100 })), { code: 'invalid_parameter', param: 'args', message: /deeper than 2/ })
  t.match(errorOf(() => checkJsonTextLimits('"é"', 'args', { maxDepth: 2, maxBytes: 3 })), { message: /larger than 3 bytes/ })
  t.match(errorOf(() => checkJsonTextLimits('['.repeat(1_000_000), 'tool_calls[0].function.arguments')), { message: /deeper than 128/ })
})

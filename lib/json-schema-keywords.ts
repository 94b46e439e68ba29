// What llama.cpp's converter reads of a JSON schema, and what never matters: the keyword tables of
// lib/json-schema-check.ts, with the words its messages use.
import type { JsonValue } from './json-limits.js'
import type { SchemaKind } from './json-schema-graph.js'

export type JsonType = 'null' | 'boolean' | 'integer' | 'number' | 'string' | 'array' | 'object'
export const TYPES: readonly JsonType[] = ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object']
export const ALL = new Set<JsonType>(TYPES)

/** Never change what is valid; accepted and ignored everywhere. */
export const ANNOTATIONS = new Set([
  'title', 'description', 'default', 'examples', 'example', '$schema', '$id', '$anchor', '$comment', 'deprecated',
  'readOnly', 'writeOnly', 'contentEncoding', 'contentMediaType', 'discriminator', '$defs', 'definitions',
])
/** The keywords the converter reads, with the instance types each constrains (others pass it untouched). */
export const CONSTRAINS: ReadonlyMap<string, ReadonlySet<JsonType>> = new Map([
  ...['$ref', 'anyOf', 'oneOf', 'allOf', 'type', 'enum', 'const'].map((k) => [k, ALL] as const),
  ...['properties', 'required', 'additionalProperties'].map((k) => [k, new Set<JsonType>(['object'])] as const),
  ...['items', 'prefixItems', 'minItems', 'maxItems'].map((k) => [k, new Set<JsonType>(['array'])] as const),
  ...['pattern', 'format', 'minLength', 'maxLength'].map((k) => [k, new Set<JsonType>(['string'])] as const),
  ...['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].map((k) => [k, new Set<JsonType>(['integer', 'number'])] as const),
])
/** The formats the converter has grammar for; any other format is ignored. */
export const FORMATS = new Set(['date', 'time', 'date-time', 'uuid', 'uuid1', 'uuid2', 'uuid3', 'uuid4', 'uuid5'])

export function jsonType(v: JsonValue): JsonType {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v as JsonType
}

/** Does a value of type `t` satisfy a declared type (an integer is a number)? */
export const fits = (t: JsonType, declared: ReadonlySet<string>): boolean => declared.has(t) || (t === 'integer' && declared.has('number'))

export function kindWords(kind: SchemaKind): string {
  const words: Record<SchemaKind, string> = {
    ref: 'a $ref', alternatives: 'an anyOf/oneOf', 'type-union': 'a type union', const: 'a const', enum: 'an enum', object: 'an object',
    'all-of': 'an allOf', array: 'an array', tuple: 'a tuple', string: 'a string', integer: 'an integer', number: 'a number (only integer bounds are enforced)',
    boolean: 'a boolean', null: 'null', any: 'any value (it has no type)',
  }
  return words[kind]
}

export function unknownFormat(format: JsonValue | undefined): string {
  return `${JSON.stringify(format)} is not a format llama.cpp's converter knows (${[...FORMATS].slice(0, 4).join(', ')}, uuid1-uuid5)`
}

export function unsupportedWhy(keyword: string): string {
  if (keyword === 'nullable') return 'is not JSON Schema (OpenAPI); write "type": [..., "null"] instead'
  if (keyword === '$dynamicRef' || keyword === '$recursiveRef') return 'is not supported: only $ref pointers into the same schema ("#/...") are'
  return 'is not supported: llama.cpp\'s grammar cannot enforce it, and a strict schema may not use what the grammar would ignore'
}

// Hostile values for one field: wrong types, nulls, numbers at and past every limit (and the JSON literals
// no JS number prints as), huge and strange strings, deep nesting, huge arrays and maps.
import { obj, Raw, sizeUpTo, type FuzzValue } from './fuzz-value.js'
import type { Rng } from './rng.js'

export const NUMBERS: FuzzValue[] = [
  -1, 0, 1, 1.5, -0.5, 2, 3, 16, 17, 100, 255, 256, 257, 1023, 1024, 4096, 65535, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53,
  2 ** 53 + 2, -(2 ** 53), 1e15, 1e21, 1e308, -1e308, 5e-324, 0.1 + 0.2,
  new Raw('-0', "'-0'"),
  new Raw('1e999', "'1e999'"),
  new Raw('-1e999', "'-1e999'"),
  new Raw('1E400', "'1E400'"),
  new Raw('123456789012345678901234567890', "'123456789012345678901234567890'"),
  new Raw(`0.${'0'.repeat(400)}1`, `'0.' + '0'.repeat(400) + '1'`),
  new Raw(`1${'0'.repeat(5000)}`, `'1' + '0'.repeat(5000)`),
]

/** Number-like text that is not JSON: a body carrying it must get invalid_json. */
export const BAD_NUMBER_LITERALS: Raw[] = ['NaN', 'Infinity', '-Infinity', '0x10', '+1', '.5', '01', '1.', '1e', '--1', '1_000'].map(
  (t) => new Raw(t, JSON.stringify(t)),
)

export const NUMBER_STRINGS: FuzzValue[] = ['NaN', 'Infinity', '-Infinity', '-1', '1e999', '0x10', ' 1', '1', '', '0']

export const UNICODE: string[] = [
  '\u0000', 'a\u0000b', '\u0001\u0002\u001f\u007f', '\t\r\n\v\f', '\ufeff', '\ufeffhello', '\u200b\u200c\u200d', '\u202e\u202d',
  '\uffff', '\ufffe', '\ufffd', 'e\u0301\u0302\u0303\u0304', 'Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358',
  '\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66', '\ud83c\uddfa\ud83c\uddf8', '\u{10ffff}', '\u{1f600}'.repeat(50),
  '日本語のテキスト', 'العربية', '\u0928\u092e\u0938\u094d\u0924\u0947', 'ﷺ', 'İı', 'ß'.repeat(30), '\u2028\u2029',
  // lone surrogates: JSON.stringify escapes them (\ud800), the server decodes them into ill-formed strings
  '\ud800', '\udc00', 'a\ud800b', '\udfff\ud800', '\udbff', 'x\ud83d', '\ude00y',
  // text that looks special to a tokenizer or a template
  '<s>', '</s>', '<unk>', '<|endoftext|>', '<|im_start|>system\nx<|im_end|>', '[INST]', '{{ messages }}', '{% for x in range(99999999) %}x{% endfor %}',
  '{#', '\\', '"', "'", '%s%n%x', '../../../../etc/passwd', 'null', '__proto__', 'constructor',
]

/** Odd key names, for unknown fields and for map keys. */
export const ODD_KEYS: string[] = [
  'foo', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', 'model ', 'Model', 'MESSAGES',
  '\u0000', '\ud800', 'a'.repeat(5000), '\u{1f600}', 'messages.0', 'logit_bias[1]', '$ref', '-1', '1e3', '0x1', '007',
]

/** Strings of about `bytes` UTF-8 bytes, each a repeat of one short unit. */
export function hugeString(rng: Rng, bytes: number): string {
  const unit = rng.pick(['a', 'word ', 'x'.repeat(7) + ' ', '\u00e9', '\u{1f600}', '\ud800', '\u0000', '日本', '<s>', ' ', '\n', 'ab'])
  const unitBytes = Buffer.byteLength(unit, 'utf8')
  return unit.repeat(Math.max(1, Math.floor(bytes / unitBytes)))
}

/** A JSON nest `depth` deep as raw text: arrays, or objects on one key, around `leaf`. */
export function deepNest(depth: number, kind: 'array' | 'object', leaf = '1'): Raw {
  if (kind === 'array') return new Raw('['.repeat(depth) + leaf + ']'.repeat(depth), `'['.repeat(${depth}) + ${JSON.stringify(leaf)} + ']'.repeat(${depth})`)
  return new Raw('{"a":'.repeat(depth) + leaf + '}'.repeat(depth), `'{"a":'.repeat(${depth}) + ${JSON.stringify(leaf)} + '}'.repeat(${depth})`)
}

export type ValueKind = 'null' | 'bool' | 'number' | 'string' | 'array' | 'object'

export function kindOf(v: FuzzValue | undefined): ValueKind | 'raw' | 'missing' {
  if (v === undefined) return 'missing'
  if (v === null) return 'null'
  if (v instanceof Raw) return 'raw'
  if (Array.isArray(v)) return 'array'
  return typeof v === 'object' ? 'object' : typeof v === 'boolean' ? 'bool' : (typeof v as 'number' | 'string')
}

/** A small value of a kind other than `not`. */
export function wrongType(rng: Rng, not: ReturnType<typeof kindOf>): FuzzValue {
  const options: [ValueKind, () => FuzzValue][] = [
    ['null', () => null],
    ['bool', () => rng.pick([true, false])],
    ['number', () => rng.pick(NUMBERS)],
    ['string', () => rng.pick(['', 'x', 'true', '1', '[]', '{}', ...NUMBER_STRINGS])],
    ['array', () => rng.pick<FuzzValue>([[], [null], [1, 2], ['a'], [{}], [[]]])],
    ['object', () => rng.pick<FuzzValue>([{}, { a: 1 }, { type: 'text' }, obj([['__proto__', { polluted: true }]]), { '0': 'x' }])],
  ]
  return rng.pick(options.filter(([k]) => k !== not))[1]()
}

/** One hostile value, with a label saying what it is. */
export function hostile(rng: Rng, current: FuzzValue | undefined): { value: FuzzValue; what: string } {
  const kind = kindOf(current)
  return rng.weighted<() => { value: FuzzValue; what: string }>([
    [5, () => ({ value: wrongType(rng, kind), what: 'wrong type' })],
    [2, () => ({ value: null, what: 'null' })],
    [5, () => ({ value: rng.pick(NUMBERS), what: 'edge number' })],
    [1, () => ({ value: rng.pick(NUMBER_STRINGS), what: 'number as string' })],
    [4, () => ({ value: rng.pick(UNICODE), what: 'unicode edge' })],
    [2, () => ({ value: hugeString(rng, rng.pick([10_000, 100_000, 1_000_000])), what: 'huge string' })],
    [1, () => ({ value: hugeString(rng, 2_200_000), what: 'string over the body limit' })],
    [2, () => ({ value: deepNest(rng.pick([64, 1000, 10_000, 100_000]), rng.pick(['array', 'object'] as const)), what: 'deep nesting' })],
    [2, () => {
      // of the current value where that stays a few megabytes at most
      const n = rng.pick([100, 1000, 10_000, 100_000])
      const item = current === undefined || current instanceof Raw || sizeUpTo(current, 4_000_000 / n) * n > 4_000_000 ? 1 : current
      return { value: Array(n).fill(item), what: 'huge array' }
    }],
    [1, () => ({ value: obj(Array.from({ length: rng.pick([100, 10_000]) }, (_, i) => [String(i), 1])), what: 'many keys' })],
    [2, () => ({ value: Array.isArray(current) ? obj(current.map((x, i) => [String(i), x])) : [current ?? null], what: 'array/object swapped' })],
    [1, () => ({ value: obj([[rng.pick(ODD_KEYS), rng.pick(NUMBERS)]]), what: 'object with an odd key' })],
  ])()
}

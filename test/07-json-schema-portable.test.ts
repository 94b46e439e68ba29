// Patterns as zod and other clients write them, made readable by llama.cpp's converter: `\d` and `\w` become the
// ASCII classes they stand for, inside and outside character classes; nothing else changes.
import t from 'tap'
import { analyzePattern } from '../lib/json-schema-pattern.js'
import { portablePattern, portablePatterns } from '../lib/json-schema-portable.js'

t.test('\\d and \\w become classes; other escapes, and an escaped backslash before d, stay', async (t) => {
  t.equal(portablePattern('^\\d{3}-\\d{4}$'), '^[0-9]{3}-[0-9]{4}$')
  t.equal(portablePattern('^[12]\\d|3[01]$'), '^[12][0-9]|3[01]$')
  t.equal(portablePattern('^[\\d.]+$'), '^[0-9.]+$', 'inside a class: its range')
  t.equal(portablePattern('^\\w+$'), '^[A-Za-z0-9_]+$')
  t.equal(portablePattern('^\\\\d$'), '^\\\\d$', 'a backslash, then the letter d')
  t.equal(portablePattern('^[\\]\\d]$'), '^[\\]0-9]$', 'an escaped ] does not close the class')
  t.equal(portablePattern('^\\s\\D\\.$'), '^\\s\\D\\.$', 'the rest is left for the checks')
})

t.test("zod's time pattern turns into one llama.cpp's converter takes", async (t) => {
  const zodTime = '^(?:[01]\\d|2[0-3]):[0-5]\\d(?::[0-5]\\d(?:\\.\\d+)?)?$'
  t.equal(analyzePattern(zodTime).status, 'unsupported')
  t.equal(analyzePattern(portablePattern(zodTime)).status, 'ok')
})

t.test('only pattern keywords change: not property names, not data; the input stays as it was', async (t) => {
  const schema = {
    type: 'object',
    properties: {
      pattern: { type: 'string', pattern: '^\\d$' },
      list: { type: 'array', items: { anyOf: [{ type: 'string', pattern: '^\\w$' }, { type: 'null' }] } },
    },
    $defs: { pattern: { type: 'string', pattern: '^\\d\\d$' } },
    default: { pattern: '^\\d$' },
    enum: [{ pattern: '^\\d$' }],
  }
  const before = JSON.stringify(schema)
  const out = portablePatterns(schema)
  t.equal(JSON.stringify(schema), before, 'the input is not modified')
  t.same(out.properties.pattern, { type: 'string', pattern: '^[0-9]$' }, 'a property named pattern is a schema')
  t.same(out.properties.list.items.anyOf[0], { type: 'string', pattern: '^[A-Za-z0-9_]$' })
  t.same(out.$defs.pattern.pattern, '^[0-9][0-9]$')
  t.same(out.default, { pattern: '^\\d$' }, 'data is left alone')
  t.same(out.enum, [{ pattern: '^\\d$' }])
  const plain = { type: 'object', properties: { a: { type: 'string' } } }
  t.equal(portablePatterns(plain), plain, 'a schema without such patterns is returned as it is')
  const cyclic: Record<string, unknown> = { type: 'object' }
  cyclic.properties = { self: cyclic }
  t.doesNotThrow(() => portablePatterns(cyclic), 'a cycle ends at the depth limit, for the checks to refuse')
})

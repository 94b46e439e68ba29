// hearth's own tool-call envelope without a model: fixed outputs fed whole and in random chunk splits give the same
// message, tool calls start once with their whole name, arguments are the raw JSON text, content is unescaped.
import t from 'tap'
import { MessageAssembler, type OutputDelta } from '../lib/chat-output.js'
import { EnvelopeOutput, envelopeConversation, envelopeSchema } from '../lib/tool-envelope.js'

function run(text: string, splits: number[] = []) {
  const out = new EnvelopeOutput()
  const message = new MessageAssembler()
  const deltas: OutputDelta[] = []
  let at = 0
  for (const end of [...splits, text.length]) {
    const d = out.push(text.slice(at, end))
    deltas.push(...d)
    message.add(d)
    at = end
  }
  const rest = out.finish()
  deltas.push(...rest)
  message.add(rest)
  return { message: message.message, deltas }
}

/** Deterministic pseudo-random cut points (never inside a UTF-16 surrogate pair). */
function cuts(text: string, seed: number): number[] {
  const points: number[] = []
  let x = seed
  for (let i = 1; i < text.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    const code = text.charCodeAt(i)
    if (x % 3 === 0 && !(code >= 0xdc00 && code <= 0xdfff)) points.push(i)
  }
  return points
}

const strip = (m: ReturnType<typeof run>['message']) => ({ ...m, toolCalls: m.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments })) })

const cases: [string, string, { content: string; calls: { name: string; arguments: string }[] }][] = [
  [
    'one call with nested arguments',
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "n": [1, {"a": "}\\"]"}], "ok": true}}]}',
    { content: '', calls: [{ name: 'get_weather', arguments: '{"city": "Paris", "n": [1, {"a": "}\\"]"}], "ok": true}' }] },
  ],
  [
    'two calls, whitespace and newlines',
    '{ "tool_calls" : [\n  {"name":"a","arguments":{}} ,\n  {"name": "b_2", "arguments": {"x": -1.5e3}}\n] }',
    { content: '', calls: [{ name: 'a', arguments: '{}' }, { name: 'b_2', arguments: '{"x": -1.5e3}' }] },
  ],
  ['content with escapes', '{"content": "He said \\"hi\\" \\u00e9 \\ud83d\\ude00\\n\\\\ / \\/"}', { content: 'He said "hi" é 😀\n\\ / /', calls: [] }],
  ['content that follows a schema', '{"content": {"answer": [1, 2], "why": "b}c"}}', { content: '{"answer": [1, 2], "why": "b}c"}', calls: [] }],
  ['a primitive argument', '{"tool_calls": [{"name": "f", "arguments": null}]}', { content: '', calls: [{ name: 'f', arguments: 'null' }] }],
  ['not an envelope', 'Hello there', { content: 'Hello there', calls: [] }],
]

t.test('every split gives the one-shot message', async (t) => {
  for (const [name, text, want] of cases) {
    const whole = run(text)
    t.same(strip(whole.message), { content: want.content, reasoning: '', toolCalls: want.calls }, `${name}: one shot`)
    for (let seed = 1; seed <= 25; seed++) {
      const split = run(text, cuts(text, seed))
      t.same(strip(split.message), strip(whole.message), `${name}: split ${seed}`)
    }
    const byChar = run(text, [...text].map((_, i) => i).slice(1))
    t.same(strip(byChar.message), strip(whole.message), `${name}: one character at a time`)
  }
})

t.test('a call starts once, with its whole name and an id, before its arguments', async (t) => {
  const text = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}, {"name": "x", "arguments": {}}]}'
  const { deltas, message } = run(text, [...text].map((_, i) => i).slice(1))
  const starts = deltas.filter((d) => d.kind === 'tool-call')
  t.same(starts.map((d) => d.kind === 'tool-call' && [d.index, d.name]), [[0, 'get_weather'], [1, 'x']])
  for (const s of starts) if (s.kind === 'tool-call') t.match(s.id, /^call_[0-9a-f]{24}$/)
  const firstArgs = deltas.findIndex((d) => d.kind === 'tool-arguments')
  t.ok(firstArgs > deltas.indexOf(starts[0]!), 'arguments follow their call')
  t.notSame(message.toolCalls[0]!.id, message.toolCalls[1]!.id, 'ids are unique')
})

t.test('the envelope schema and the conversation for templates without tools', async (t) => {
  const tools = [{ name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } }, { name: 'g' }]
  const auto = envelopeSchema(tools, false, true)
  t.ok(Array.isArray(auto.anyOf) && (auto.anyOf as unknown[]).length === 2, 'auto: calls or content')
  const forced = envelopeSchema(tools, true, false) as { properties: { tool_calls: { maxItems?: number; minItems: number } } }
  t.equal(forced.properties.tool_calls.minItems, 1, 'required: at least one call')
  t.equal(forced.properties.tool_calls.maxItems, 1, 'no parallel calls: at most one')
  const conversation = envelopeConversation(
    [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', name: 'f', arguments: '{"a":"x"}' }] },
      { role: 'tool', toolCallId: 'call_1', content: 'sunny' },
    ],
    tools,
    false,
  )
  t.equal(conversation[0]!.role, 'system')
  t.match(conversation[0]!.content, /- f\. Arguments: \{"type":"object"/)
  t.match(conversation[0]!.content, /\{"content": "<your answer>"\}/)
  t.same(conversation[2], { role: 'assistant', content: '{"tool_calls": [{"name": "f", "arguments": {"a":"x"}}]}' })
  t.same(conversation[3], { role: 'user', content: 'Result of f (call call_1): sunny' })
})

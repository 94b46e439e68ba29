// Cases aimed at known weak spots: grammars that are deep, long or huge once expanded; grammars the sampler
// can exhaust while EOS is banned; token ids outside the vocabulary; requests that can never fit the server;
// huge n / max_tokens / logit_bias / stop lists; streams the client walks away from; odd tools, formats,
// messages and input items. Each starts from the smallest valid request, so its reproducer stays short.
import type { AbortPlan } from './fuzz-case.js'
import type { FuzzContext, PostEndpoint } from './endpoints.js'
import { obj, Raw, type FuzzObject, type FuzzValue } from './fuzz-value.js'
import type { Rng } from './rng.js'
import { deepNest, hugeString, UNICODE } from './values.js'

export interface TargetedBody {
  body: FuzzObject
  label: string
  /** statuses that fit; default 200 or 400 */
  expect?: number[]
  abort?: AbortPlan
}

export interface Targeted {
  name: string
  endpoints: readonly PostEndpoint[]
  make(rng: Rng, ctx: FuzzContext, e: PostEndpoint): TargetedBody
}

const GEN = ['chat', 'completions', 'responses'] as const
const ALL = ['chat', 'completions', 'responses', 'embeddings'] as const

/** The smallest valid request, plus `extra`. */
export function minimal(e: PostEndpoint, extra: [string, FuzzValue][] = [], stream = false): FuzzObject {
  const base: [string, FuzzValue][] =
    e === 'chat' ? [['messages', [{ role: 'user', content: 'hi' }]], ['max_tokens', 4]]
    : e === 'completions' ? [['prompt', 'hi'], ['max_tokens', 4]]
    : e === 'responses' ? [['input', 'hi'], ['max_output_tokens', 4]]
    : [['input', 'hi']]
  if (stream && e !== 'embeddings') base.push(['stream', true])
  const o = obj(base)
  for (const [k, v] of extra) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  return o
}

/** A string value given as text plus the JS expression that builds it (for folding rule lists). */
function rawString(text: string, expr: string): Raw {
  return new Raw(JSON.stringify(text), `JSON.stringify(${expr})`)
}

const maxTokensField = (e: PostEndpoint) => (e === 'responses' ? 'max_output_tokens' : 'max_tokens')

const GRAMMARS: ((rng: Rng) => [FuzzValue, string])[] = [
  () => [`root ::= ${'('.repeat(25000)}"a"${')'.repeat(25000)}`, '25,000 nested groups'],
  () => [`root ::= ${'('.repeat(25000)}`, '25,000 unclosed groups'],
  () => [`root ::= ${'['.repeat(5000)}`, '5,000 unclosed brackets'],
  () => [`root ::= "a"${' "a"'.repeat(20000)}`, '20,000 terms in one rule'],
  () => [`root ::= ${'"a" | '.repeat(20000)}"b"`, '20,000 alternatives'],
  (rng) => {
    const n = rng.pick([1000, 5000, 20000])
    return [
      rawString(`root ::= r0\n${Array.from({ length: n }, (_, i) => `r${i} ::= r${i + 1}`).join('\n')}\nr${n} ::= "a"`,
        `'root ::= r0\\n' + Array.from({ length: ${n} }, (_, i) => 'r' + i + ' ::= r' + (i + 1)).join('\\n') + '\\nr${n} ::= "a"'`),
      `a chain of ${n} rules`,
    ]
  },
  (rng) => {
    const n = rng.pick([1000, 5000])
    return [
      rawString(`root ::= r0\n${Array.from({ length: n }, (_, i) => `r${i} ::= "x" r${i + 1} | "y"`).join('\n')}\nr${n} ::= "a"`,
        `'root ::= r0\\n' + Array.from({ length: ${n} }, (_, i) => 'r' + i + ' ::= "x" r' + (i + 1) + ' | "y"').join('\\n') + '\\nr${n} ::= "a"'`),
      `a chain of ${n} recursive rules`,
    ]
  },
  (rng) => [rng.pick(['root ::= "a"{0,1000000}', 'root ::= [a-z]{100000}', 'root ::= ("a"{0,1000}){0,1000}', 'root ::= "a"{2147483647}', 'root ::= "a"{99999999999999999999}']), 'a huge repetition'],
  (rng) => [rng.pick(['root ::= root "a" | "a"', 'root ::= a\na ::= b\nb ::= a', 'root ::= x', 'root ::= ', 'root ::= ""', 'x ::= "a"']), 'a degenerate grammar'],
  (rng) => [rng.pick(['root ::= [\\u0000-\\U0010FFFF]*', 'root ::= "\\xff\\xfe"', 'root ::= [^]*', 'root ::= "\\ud800"', `root ::= "${'\\\\'.repeat(5000)}"`]), 'odd characters'],
]

export const TARGETED: Targeted[] = [
  {
    name: 'grammar-shapes',
    endpoints: GEN,
    make(rng, _ctx, e) {
      const [grammar, what] = rng.pick(GRAMMARS)(rng)
      return { body: minimal(e, [['grammar', grammar]], rng.chance(0.3)), label: `grammar: ${what}` }
    },
  },
  {
    name: 'deep-grammar',
    endpoints: GEN,
    make: (rng, _ctx, e) => ({ body: minimal(e, [['grammar', `root ::= ${'('.repeat(25000)}`]], rng.chance(0.3)), label: 'grammar "root ::= " + "(" * 25000' }),
  },
  {
    name: 'json-object-ignore-eos',
    endpoints: ['chat', 'responses'],
    make(rng, _ctx, e) {
      const format: [string, FuzzValue] = e === 'chat' ? ['response_format', { type: 'json_object' }] : ['text', { format: { type: 'json_object' } }]
      const body = minimal(e, [format, ['ignore_eos', true], [maxTokensField(e), rng.pick([16, 64, 200])]], rng.chance(0.5))
      return { body, label: 'json_object with ignore_eos' }
    },
  },
  {
    name: 'grammar-ignore-eos',
    endpoints: GEN,
    make(rng, _ctx, e) {
      const grammar = rng.pick(['root ::= "yes" | "no"', 'root ::= ""', 'root ::= "a"{1,3}'])
      return { body: minimal(e, [['grammar', grammar], ['ignore_eos', true], [maxTokensField(e), 32]], rng.chance(0.5)), label: `a finite grammar (${grammar}) with ignore_eos` }
    },
  },
  {
    name: 'out-of-vocabulary',
    endpoints: ALL,
    make(rng, ctx, e) {
      const bad = rng.pick([-1, ctx.nVocab, ctx.nVocab + 1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 1e20, 2 ** 53, 1.5])
      if (e === 'completions' || e === 'embeddings') {
        const field = e === 'completions' ? 'prompt' : 'input'
        const value = rng.pick<FuzzValue>([[bad], [5, bad, 7], [[5], [bad]]])
        return { body: minimal(e, [[field, value]]), label: `token id ${bad} in ${field}`, expect: [400] }
      }
      const key = rng.pick([String(bad), '99999999999999999999', '-0', '1e3', ' 1', '0x10'])
      return { body: minimal(e, [['logit_bias', obj([[key, 1]])]]), label: `logit_bias key ${JSON.stringify(key)}`, expect: [400] }
    },
  },
  {
    name: 'never-fits',
    endpoints: ['completions', 'chat'],
    make(rng, _ctx, e) {
      if (e === 'completions') {
        const [prompts, n] = rng.pick([[100, 16], [21, 1], [64, 2], [3, 16]] as const)
        return { body: minimal(e, [['prompt', Array(prompts).fill('hi')], ['n', n]]), label: `${prompts} prompts x n ${n}: more sequences than slots plus queue`, expect: [400] }
      }
      return { body: minimal(e, [['n', 16], ['messages', [{ role: 'user', content: 'hi' }]]]), label: 'n 16 on chat', expect: [200, 400] }
    },
  },
  {
    name: 'huge-n',
    endpoints: ['chat', 'completions'],
    make: (rng, _ctx, e) => {
      const n = rng.pick([17, 1000, 1e9, 2 ** 31, 2 ** 53, -1, 0, 1.5])
      return { body: minimal(e, [['n', n]], rng.chance(0.5)), label: `n ${n}`, expect: [400] }
    },
  },
  {
    name: 'huge-max-tokens',
    endpoints: GEN,
    make: (rng, _ctx, e) => {
      const m = rng.pick<FuzzValue>([1e9, 2 ** 31, 2 ** 53, 1e308, -1, new Raw('1e999', "'1e999'"), 257, 1.5])
      // a whole count past the context is served, ending with length, as OpenAI's max_tokens is an upper bound;
      // past 1e9 it is refused as no answer could reach it
      const whole = typeof m === 'number' && Number.isSafeInteger(m) && m > 0 && m <= 1e9
      return { body: minimal(e, [[maxTokensField(e), m]], rng.chance(0.5)), label: `${maxTokensField(e)} ${m instanceof Raw ? m.text : m}`, expect: whole ? [200] : [400] }
    },
  },
  {
    name: 'fills-context',
    endpoints: ['completions'],
    make: (rng, ctx, e) => {
      // past the context, max_tokens ends the answer early (length); only a prompt that fills it all is refused
      const over = rng.pick([0, 1, 16])
      const prompt = Array.from({ length: ctx.nCtx - 16 + over }, (_, i) => 3 + (i % (ctx.nVocab - 3)))
      return { body: minimal(e, [['prompt', prompt], ['max_tokens', 16], ['ignore_eos', true]], rng.chance(0.5)), label: `prompt + max_tokens = ctx + ${over}`, expect: [over === 16 ? 400 : 200] }
    },
  },
  {
    name: 'huge-logit-bias',
    endpoints: GEN,
    make(rng, ctx, e) {
      return rng.pick<() => TargetedBody>([
        () => ({ body: minimal(e, [['logit_bias', obj(Array.from({ length: ctx.nVocab }, (_, i) => [String(i), -100]))], ['ignore_eos', true]]), label: 'every token biased -100, ignore_eos' }),
        () => ({ body: minimal(e, [['logit_bias', obj(Array.from({ length: ctx.nVocab }, (_, i) => [String(i), 100]))]]), label: 'every token biased +100' }),
        () => ({ body: minimal(e, [['logit_bias', obj(Array.from({ length: 100_000 }, (_, i) => [String(i), 1]))]]), label: '100,000 logit_bias entries', expect: [400] }),
        () => ({ body: minimal(e, [['logit_bias', obj([['5', rng.pick([1e308, -1e308, 101, new Raw('1e999', "'1e999'")])]])]]), label: 'logit_bias value out of range', expect: [400] }),
      ])()
    },
  },
  {
    name: 'many-stops',
    endpoints: ['chat', 'completions'],
    make(rng, _ctx, e) {
      return rng.pick<() => TargetedBody>([
        () => ({ body: minimal(e, [['stop', Array(rng.pick([17, 1000, 100_000])).fill('x')]]), label: 'too many stop strings', expect: [400] }),
        () => ({ body: minimal(e, [['stop', Array(16).fill(hugeString(rng, 60_000))]]), label: '16 stop strings of 60 kB' }),
        () => ({ body: minimal(e, [['stop', rng.pick(UNICODE)], ['max_tokens', 32]], rng.chance(0.5)), label: 'a unicode-edge stop string' }),
        () => ({ body: minimal(e, [['stop', ['', ' ', 'e', 'a', 'the', '\n', ',', '.', 'o', 't', 'i', 's', 'h', 'r', 'n', 'd']], ['max_tokens', 32]], rng.chance(0.5)), label: '16 one-character stop strings' }),
      ])()
    },
  },
  {
    name: 'abort',
    endpoints: ALL,
    make(rng, _ctx, e) {
      const abort = rng.pick<AbortPlan>([{ at: 'mid-body' }, { at: 'after-send' }, { at: 'after-bytes', bytes: rng.int(0, 4000) }])
      const body = minimal(e, e === 'embeddings' ? [['input', Array(rng.pick([1, 64, 512])).fill('word '.repeat(20))]] : [[maxTokensField(e), rng.pick([16, 100, 200])], ['ignore_eos', true], ['n', e === 'responses' ? 1 : rng.int(1, 4)]], e !== 'embeddings' && rng.chance(0.8))
      if (e === 'responses') delete body.n
      return { body, label: `client goes away ${abort.at}${abort.at === 'after-bytes' ? ` ${abort.bytes}` : ''}`, abort, expect: [200, 400] }
    },
  },
  {
    name: 'logprobs-max',
    endpoints: ['chat', 'completions', 'responses'],
    make(rng, _ctx, e) {
      const extra: [string, FuzzValue][] =
        e === 'chat' ? [['logprobs', true], ['top_logprobs', 20], ['n', 16], ['max_tokens', 200]]
        : e === 'completions' ? [['logprobs', 20], ['n', 16], ['max_tokens', 200], ['echo', false]]
        : [['top_logprobs', 20], ['max_output_tokens', 200]]
      return { body: minimal(e, [...extra, ['ignore_eos', true]], rng.chance(0.5)), label: 'top logprobs 20, n 16, 200 tokens' }
    },
  },
  {
    name: 'tools-shapes',
    endpoints: ['chat', 'responses'],
    make(rng, _ctx, e) {
      const fn = (name: FuzzValue, parameters: FuzzValue): FuzzValue => (e === 'chat' ? { type: 'function', function: { name, parameters } } : { type: 'function', name, parameters })
      const [tools, what, expect] = rng.pick<[FuzzValue, string, number[] | undefined]>([
        ['search', 'tools as a string', [400]],
        [[1, 2], 'tools of numbers', [400]],
        [[{}], 'a tool with no fields', undefined],
        [[fn(123, {})], 'a tool named by a number', undefined],
        [[fn('f', deepNest(rng.pick([1000, 100_000]), 'object'))], 'tool parameters nested deep', undefined],
        [Array(rng.pick([1000, 20_000])).fill(fn('f', { type: 'object' })), 'thousands of tools', [400]],
        [[fn(hugeString(rng, 100_000), {})], 'a 100 kB tool name', undefined],
        [[{ type: 'web_search' }, { type: 'mcp', server_label: 'x', server_url: 'http://127.0.0.1:1' }], 'built-in tool types', undefined],
        [[{ type: deepNest(10_000, 'array') }], 'a tool type nested deep', undefined],
      ])
      const choice = rng.pick<FuzzValue>(['auto', 'none', 'required', 'bogus', { type: 'function', function: { name: 'f' } }, { type: 'function', name: 'f' }, 7])
      return { body: minimal(e, [['tools', tools], ...(rng.chance(0.5) ? [['tool_choice', choice] as [string, FuzzValue]] : [])], rng.chance(0.3)), label: what, ...(expect ? { expect } : {}) }
    },
  },
  {
    name: 'format-shapes',
    endpoints: ['chat', 'responses'],
    make(rng, _ctx, e) {
      const format = rng.pick<FuzzValue>([
        { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
        { type: 'json_schema', json_schema: { name: 'x', strict: true, schema: deepNest(10_000, 'object') } },
        { type: 'json_schema', name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } } } },
        { type: 'json_object', schema: { type: 'array' } },
        { type: 'grammar', grammar: 'root ::= "a"' },
        { type: 'regex', pattern: '.*' },
        { type: 123 }, {}, [], 'json_object', { type: '' }, { type: 'JSON_OBJECT' },
        // an unknown field nested deep: /v1/responses echoes text.format back
        { type: 'text', x: deepNest(10_000, 'object') },
      ])
      const body = e === 'chat' ? minimal(e, [['response_format', format]], rng.chance(0.3)) : minimal(e, [['text', { format }]], rng.chance(0.3))
      return { body, label: `format ${JSON.stringify(format).slice(0, 80)}` }
    },
  },
  {
    name: 'messages-shapes',
    endpoints: ['chat'],
    make(rng, _ctx, e) {
      const [messages, what] = rng.pick<[FuzzValue, string]>([
        [Array(rng.pick([1000, 50_000])).fill({ role: 'user', content: 'hi' }), 'thousands of messages'],
        [[{ role: 'tool', content: 'x' }], 'a tool message without tool_call_id'],
        [[{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [{}] }], 'an empty tool call'],
        [[{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: deepNest(10_000, 'array') } }] }], 'tool call arguments nested deep'],
        [[{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }], 'an image part'],
        [[{ role: 'user', content: Array(10_000).fill({ type: 'text', text: 'a' }) }], '10,000 content parts'],
        [[{ role: 'user', content: 'hi', name: hugeString(rng, 100_000) }], 'a 100 kB name'],
        [[{ role: 'function', content: 'x', name: 'f' }], 'a function message'],
        [[{ role: 'user' }], 'a message without content'],
        [[{ role: 'assistant', content: 'hi' }], 'only an assistant message'],
        [[{ role: 'system', content: '' }], 'only an empty system message'],
        [[{ role: 'user', content: '{{ raise_exception("x") }}' }], 'template syntax in content'],
      ])
      return { body: minimal(e, [['messages', messages]], rng.chance(0.3)), label: what }
    },
  },
  {
    name: 'input-items',
    endpoints: ['responses'],
    make(rng, ctx, e) {
      const [input, what, expect] = rng.pick<[FuzzValue, string, number[] | undefined]>([
        [[], 'an empty input list', undefined],
        [[{}], 'an item with no fields', [400]],
        [[{ type: 'function_call' }], 'a function_call without call_id', [400]],
        [[{ type: 'function_call', call_id: 'c', name: 'f', arguments: { a: 1 } }, { type: 'function_call_output', call_id: 'c', output: { deep: deepNest(rng.pick([1000, 10_000]), 'array') } }], 'a call and its object output', undefined],
        [[{ type: 'message', role: 'user', content: [{ type: deepNest(10_000, 'array'), text: 'x' }] }], 'a content part type nested deep', undefined],
        [[{ type: 'reasoning', summary: [] }], 'only a reasoning item', undefined],
        [[{ type: 'computer_call' }], 'an unsupported item type', [400]],
        [[{ type: null, role: 'user', content: 'hi' }], 'type null', undefined],
        [[{ type: 'message', role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }], 'an image', [400]],
        [Array(rng.pick([1000, 20_000])).fill({ type: 'message', role: 'user', content: 'hi' }), 'thousands of items', undefined],
        [[{ type: 'message', role: 'user', content: [{ type: 'input_text' }] }], 'a text part without text', [400]],
      ])
      const extra: [string, FuzzValue][] = [['input', input]]
      if (rng.chance(0.3)) extra.push(['previous_response_id', rng.chance(0.5) && ctx.responseIds.length ? rng.pick(ctx.responseIds) : `resp_${'0'.repeat(24)}`])
      return { body: minimal(e, extra, rng.chance(0.3)), label: what, ...(expect ? { expect } : {}) }
    },
  },
  {
    name: 'embeddings-shapes',
    endpoints: ['embeddings'],
    make(rng, ctx, e) {
      const [extra, what, expect] = rng.pick<[[string, FuzzValue][], string, number[]]>([
        [[['input', Array(2049).fill('a')]], '2049 inputs', [400]],
        [[['input', Array(2048).fill('a')]], '2048 inputs', [200]],
        [[['input', [[]]]], 'an empty token list', [400]],
        [[['input', ['a', '']]], 'an empty string input', [400]],
        [[['input', []]], 'no inputs', [400]],
        [[['dimensions', rng.pick([0, -1, ctx.nEmbd + 1, 2 ** 31, 1.5])]], 'dimensions out of range', [400]],
        [[['input', hugeString(rng, 1_000_000)]], 'a 1 MB input', [400]],
        [[['input', [Array(ctx.nCtx * 4).fill(5)]]], 'a token list longer than the context', [400]],
        [[['encoding_format', rng.pick(['base32', '', 'FLOAT', null])]], 'an encoding_format', [200, 400]],
      ])
      return { body: minimal(e, extra), label: what, expect }
    },
  },
  {
    name: 'previous-response',
    endpoints: ['responses'],
    make(rng, ctx, e) {
      const id = rng.pick<FuzzValue>([...(ctx.responseIds.length ? [rng.pick(ctx.responseIds)] : []), 'resp_nope', '', hugeString(rng, 100_000), '../x', '\u0000', 'resp_\ud800'])
      return { body: minimal(e, [['previous_response_id', id]], rng.chance(0.3)), label: `previous_response_id ${JSON.stringify(id).slice(0, 40)}`, expect: [200, 400, 404] }
    },
  },
  {
    name: 'seed-edges',
    endpoints: GEN,
    make: (rng, _ctx, e) => {
      const seed = rng.pick([2 ** 53, -(2 ** 53), 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 32, 2 ** 32 - 1, -1, 1.5])
      return { body: minimal(e, [['seed', seed], ['n', e === 'responses' ? 1 : 2]].filter(([k]) => !(e === 'responses' && k === 'n')) as [string, FuzzValue][]), label: `seed ${seed}` }
    },
  },
  {
    name: 'special-tokens',
    endpoints: ['completions'],
    make: (rng, _ctx, e) => {
      const prompt = rng.pick<FuzzValue>([[1], [2], [0], Array(200).fill(1), Array(200).fill(2), [1, 2, 1, 2], '<s></s><unk>'])
      return { body: minimal(e, [['prompt', prompt], ['ignore_eos', rng.chance(0.5)]], rng.chance(0.5)), label: `prompt ${JSON.stringify(prompt).slice(0, 40)}` }
    },
  },
]

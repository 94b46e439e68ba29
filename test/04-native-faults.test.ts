// Requests that used to end or stall the process: grammars past llama.cpp's recursion and copying limits, a
// grammar that leaves a sequence no token (per-sequence step status), out-of-vocabulary prompt tokens.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HearthError, native, defaultModelPath } from '../lib/index.js'
import { checkGrammarLimits, grammarLimits, type GrammarLimits } from '../lib/grammar-limits.js'
import { packageRoot, SampleStatus, type NativeModel } from '../lib/native.js'
import { jsonGrammar } from '../lib/json-grammar.js'
import { contextOptions, collect, loadModel, PROMPT } from './helpers.js'

const chain = (n: number, tail = '') => {
  const lines = ['root ::= r0']
  for (let i = 0; i < n; i++) lines.push(`r${i} ::= r${i + 1}${tail}`)
  lines.push(`r${n} ::= "a"`)
  return lines.join('\n')
}
const nested = (n: number) => 'root ::= ' + '('.repeat(n) + '"a"' + ')'.repeat(n)
// every rule has two alternatives that both start with the next rule: 2^n ways to the first character
const diamond = (n: number) => {
  const lines = ['root ::= r0']
  for (let i = 0; i < n; i++) lines.push(`r${i} ::= r${i + 1} | r${i + 1} "b"`)
  lines.push(`r${n} ::= "a"`)
  return lines.join('\n')
}

/** The grammars each limit exists for: the crash or stall reproducers, all far past the limit. */
const overLimit: [keyof GrammarLimits, string, string][] = [
  ['maxBytes', 'a 300 KB grammar', `root ::= "${'a'.repeat(300 * 1024)}"`],
  ['maxNesting', 'parentheses 25,000 deep (segfault in the parser)', nested(25000)],
  ['maxNesting', 'unbalanced parentheses 200 deep', 'root ::= ' + '('.repeat(200)],
  ['maxRules', '40,000 rules from repetitions', Array.from({ length: 20 }, (_, i) => `${i ? `x${i}` : 'root'} ::= "a"{0,2000}`).join('\n')],
  ['maxElements', '"<1000 characters>"{2000}: 2 M elements from 1 KB', `root ::= "${'a'.repeat(1000)}"{2000}`],
  ['maxRefDepth', 'a chain of 5,000 rules each starting with the next', chain(5000)],
  ['maxRefDepth', 'a chain of 3,000 rules each followed by more (O(n²) stacks)', chain(3000, ' "a"')],
  ['maxAlternatives', 'a 350-byte grammar with 2^16 ways to its first character (96 s)', diamond(16)],
  ['maxAlternatives', '10,000 alternatives', 'root ::= ' + Array.from({ length: 10000 }, (_, i) => `"${i}"`).join(' | ')],
]

const limitWords: Record<keyof GrammarLimits, string> = {
  maxBytes: 'size in bytes',
  maxNesting: 'nesting depth',
  maxRules: 'number of rules',
  maxElements: 'number of elements',
  maxRefDepth: 'depth of rules referenced at the start',
  maxAlternatives: 'number of ways to reach a first character',
}

t.test('grammar limits: each reproducer is refused with the limit and the value named', async (t) => {
  for (const [limit, what, gbnf] of overLimit) {
    const err = (() => {
      try {
        checkGrammarLimits(gbnf)
        return null
      } catch (e) {
        return e
      }
    })()
    t.ok(err instanceof HearthError, `${what}: a HearthError`)
    const e = err as HearthError
    t.match(e, { code: 'grammar_too_complex', status: 400, type: 'invalid_request_error', param: 'grammar' }, what)
    t.match(e.message, new RegExp(`its ${limitWords[limit]}[^,]* is (at least )?\\d+.*, over the limit of ${grammarLimits[limit]}$`), `${what}: names ${limit} and the value`)
  }
  t.throws(() => checkGrammarLimits(nested(25000)), { message: /nesting depth of parentheses is at least 129, over the limit of 128/ })
  t.throws(() => checkGrammarLimits(`root ::= "${'a'.repeat(300 * 1024)}"`), { message: /size in bytes is \d+, over the limit of 262144/ })
})

t.test('grammar limits: llama.cpp would loop or recurse on these, so they are refused as invalid', async (t) => {
  t.throws(() => checkGrammarLimits('root ::= "a"{5,3}'), { code: 'invalid_grammar', message: /maximum is below the minimum/ })
  t.throws(() => checkGrammarLimits('root ::= x "a"\nx ::= y\ny ::= root | "b"'), { code: 'invalid_grammar', message: /left-recursive/ })
  t.throws(() => checkGrammarLimits('root ::= e "a"\ne ::= | "c"\nx ::= e x'), { code: 'invalid_grammar', message: /rule x/ }, 'through a rule that may be empty')
  t.doesNotThrow(() => checkGrammarLimits('root ::= "(" root ")" | "a"'), 'recursion after a character is fine')
})

t.test('grammar limits: measures as llama.cpp builds the grammar', async (t) => {
  const m = (g: string) => checkGrammarLimits(g)
  t.match(m('root ::= ((("a")))'), { nesting: 3, rules: 4, refDepth: 4, alternatives: 1 })
  // root [ref END]; x{0,3} makes three rules: ["a" ALT END], ["a" ref ALT END] twice
  t.match(m('root ::= "a"{0,3}'), { rules: 4, elements: 2 + 3 + 4 + 4 })
  t.match(m('root ::= "ab"{3}'), { rules: 1, elements: 7 })
  // a-z and 0-9 are two elements each (char, upper bound), _ one; then ALT, "x", END
  t.match(m('root ::= [a-z0-9_] | "x"'), { elements: 5 + 1 + 1 + 1, alternatives: 2 })
  t.match(m('root ::= a? b\na ::= "x" | "y"\nb ::= "z"'), { alternatives: 3 }, 'an optional item: its two ways and the way past it')
  t.match(m('# comment ( ( (\nroot ::= "(((" [(] # )))\n'), { nesting: 0, rules: 1 }, 'parentheses in strings, classes and comments do not nest')
  t.match(m('root ::= "a" \0 ((((((((('), { nesting: 0, elements: 2 }, 'llama.cpp stops at a NUL')
})

t.test('grammar limits: syntax errors are answered with where they are', async (t) => {
  const bad: [string, RegExp][] = [
    ['root ::= (', /expecting '\)' at line 1, column 11 \(end of input\)/],
    ['root ::= "a"\nx ::= y', /rule y is used but never defined/],
    ['x ::= "a"', /no root rule/],
    ['root := "a"', /expecting '::=' at line 1, column 6/],
    ['root ::= "a\\q"', /unknown escape at line 1, column 12/],
    ['root ::= [a-', /unexpected end of input in a character class/],
    ['root ::= "a"{1000000}', /repeated at least 1000000 times: llama.cpp allows at most 2000/],
    ['root ::= ("a"{0,2000}){2000}', /makes \d+ copies of rules: llama.cpp allows at most 2000/],
    ['root ::= *', /has no item before it/],
    ['root ::= "a"{2', /expecting ',' or '}'/],
  ]
  for (const [gbnf, message] of bad) {
    t.throws(() => checkGrammarLimits(gbnf), { code: 'invalid_grammar', param: 'grammar', message }, JSON.stringify(gbnf))
  }
})

t.test('grammar limits: every grammar llama.cpp ships and hearth uses passes', async (t) => {
  const dir = join(packageRoot, 'deps', 'llama.cpp', 'grammars')
  const files = readdirSync(dir).filter((f) => f.endsWith('.gbnf'))
  t.ok(files.length >= 8, 'llama.cpp grammars found')
  for (const f of files) {
    t.doesNotThrow(() => checkGrammarLimits(readFileSync(join(dir, f), 'utf8')), f)
  }
  t.doesNotThrow(() => checkGrammarLimits(jsonGrammar), 'the json_object grammar')
  // what llama.cpp's json-schema-to-grammar makes of long strings and arrays (maxLength, maxItems)
  const schemaLike = String.raw`root ::= "{" space name-kv "," space tags-kv "}" space
name-kv ::= "\"name\"" space ":" space name
name ::= "\"" char{0,2000} "\"" space
tags-kv ::= "\"tags\"" space ":" space tags
tags ::= "[" space (tag ("," space tag){0,999})? "]" space
tag ::= ("\"red\"" | "\"green\"" | "\"blue\"") space
char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
space ::= | " " | "\n" [ \t]{0,20}`
  t.match(checkGrammarLimits(schemaLike), { refDepth: 4, nesting: 2 })
  const enum1000 = 'root ::= (' + Array.from({ length: 1000 }, (_, i) => `"\\"value-${i}\\""`).join(' | ') + ') " "?'
  t.match(checkGrammarLimits(enum1000), { alternatives: 1000 }, 'an enum of 1,000 values (OpenAI structured outputs allow that many)')
})

// llama.cpp's verdict on variations of real grammars: the scan must accept whatever llama.cpp accepts (it
// would refuse good grammars otherwise), and llama.cpp must refuse what the scan calls invalid
t.test('grammar limits: the scan agrees with llama.cpp on what parses', async (t) => {
  const m = await native.loadModel(defaultModelPath, {})
  t.teardown(() => m.dispose())
  const dir = join(packageRoot, 'deps', 'llama.cpp', 'grammars')
  const seeds = [...readdirSync(dir).filter((f) => f.endsWith('.gbnf')).map((f) => readFileSync(join(dir, f), 'utf8')), jsonGrammar]
  const pieces = ['(', ')', '"', '[', ']', '|', '*', '+', '?', '{2}', '{1,3}', '{2,}', '\\', '\n', ' ', '#', '-', '^', '.', 'x', '::=', '\\x4', '<[5]>', '!', '""', '\r']
  let seed = 12345
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0
    return seed % n
  }
  let accepted = 0
  let checked = 0
  const verdict = (g: string) => {
    try {
      m.checkGrammar(g)
      return true
    } catch {
      return false
    }
  }
  let refused = 0
  const check = (g: string) => {
    checked++
    let error: HearthError | null = null
    try {
      checkGrammarLimits(g)
    } catch (e) {
      error = e as HearthError
    }
    // {m,n} with n < m makes llama.cpp allocate forever: never hand it over
    if (error && /maximum is below the minimum/.test(error.message)) return
    if (error && error.code !== 'invalid_grammar') return
    const llama = verdict(g)
    if (llama) accepted++
    if (error) refused++
    if (error && llama) t.fail(`llama.cpp accepts what the scan refuses (${error.message}): ${JSON.stringify(g)}`)
  }
  for (const g of seeds) check(g)
  for (let i = 0; i < 3000; i++) {
    let g = seeds[rand(seeds.length)]!
    for (let k = 1 + rand(3); k > 0; k--) {
      const at = rand(g.length + 1)
      const op = rand(3)
      if (op === 0) g = g.slice(0, at) + g.slice(at + 1 + rand(3))
      else if (op === 1) g = g.slice(0, at) + pieces[rand(pieces.length)] + g.slice(at)
      else g = g.slice(0, at) + g.slice(rand(g.length), rand(g.length)) + g.slice(at)
    }
    check(g)
  }
  t.ok(accepted > 300 && refused > 300, `llama.cpp accepted ${accepted} of ${checked} variations, the scan refused ${refused}`)
})

t.test('the reproducers through Model.submit: 400s, and the process goes on', async (t) => {
  const model = await loadModel(t)
  for (const [, what, gbnf] of overLimit) {
    t.throws(() => model.generate('hi', { maxTokens: 2, grammar: gbnf }), { code: 'grammar_too_complex', status: 400 }, what)
  }
  t.throws(() => model.generate('hi', { maxTokens: 2, grammar: 'root ::= "a"{5,3}' }), { code: 'invalid_grammar' })
  // llama.cpp's own bounds on repetitions (2,000 copies) refuse these
  t.throws(() => model.generate('hi', { maxTokens: 2, grammar: 'root ::= "a"{1000000}' }), { code: 'invalid_grammar' })
  t.throws(() => model.generate('hi', { maxTokens: 2, grammar: 'root ::= ("a"{0,2000}){2000}' }), { code: 'invalid_grammar' })
  t.throws(() => model.generate('hi', { maxTokens: 2, grammar: 'root ::= <notonetoken>' }), { code: 'invalid_grammar' }, 'llama.cpp still checks tokens')
  t.throws(() => model.generate('hi', { maxTokens: 2, grammar: 'root ::= root "a" | "b"' }), { code: 'invalid_grammar', message: /left-recursive/ })
  const ok = await collect(model.generate('hi', { maxTokens: 3, grammar: 'root ::= "yes" | "no"', temperature: 0 }))
  t.match(ok.text, /^(yes|no)$/, 'a grammar within the limits still constrains the output')
})

t.test('a grammar that leaves no token fails only its own sequence in a step', async (t) => {
  const m = await native.loadModel(defaultModelPath, {})
  const ctx = await native.createContext(m, contextOptions({ nCtx: 512, nSeqMax: 2, nBatch: 64 }))
  t.teardown(() => {
    ctx.dispose()
    m.dispose()
  })
  const eos = m.facts().eos
  // the one token that is exactly "}": pushing it keeps the object short ({} then whitespace)
  const pieces = m.tokenPieces(false)
  const close = [...Array(m.facts().nVocab).keys()].find((i) => pieces.offsets[i + 1]! - pieces.offsets[i]! === 1 && pieces.bytes[pieces.offsets[i]!] === 0x7d)!
  t.ok(close >= 0, 'the vocabulary has "}"')
  const greedy = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 0, presencePenalty: 0, frequencyPenalty: 0, seed: 1, logprobs: true, topLogprobs: 2 }
  // the addon has no defaults of its own: a missing number is refused, not guessed
  const { topP: _, ...noTopP } = greedy
  t.throws(() => ctx.setSampler(0, noTopP as typeof greedy), { code: 'invalid_parameter', message: 'setSampler needs topP' })
  const { nUbatch: __, ...noUbatch } = contextOptions({ nCtx: 64 })
  t.throws(() => native.createContext(m, noUbatch as ReturnType<typeof contextOptions>), { code: 'invalid_options', message: 'createContext needs nUbatch' })
  // json_object + ignore_eos: once the object is complete the grammar allows only end-of-generation, which is banned
  ctx.setSampler(0, { ...greedy, grammar: jsonGrammar, logitBias: Float32Array.of(eos, -Infinity, close, 100) })
  ctx.setSampler(1, { ...greedy, logitBias: Float32Array.of(eos, -Infinity) })
  const prompt = m.tokenize(PROMPT, true, false)
  const both = (a: number[], b: number[]) => Int32Array.from([...a, ...b])
  let r = await ctx.step(both([...prompt], [...prompt]), both([...prompt.keys()], [...prompt.keys()]), both(Array(prompt.length).fill(0), Array(prompt.length).fill(1)), Int32Array.of(prompt.length - 1, 2 * prompt.length - 1))
  const out: number[][] = [[], []]
  let pos = prompt.length
  let none = -1
  for (let step = 0; step < 40 && none < 0; step++) {
    t.equal(r.status[1], SampleStatus.ok, 'the other sequence samples normally')
    t.equal(r.errors[1], '')
    if (r.status[0] !== SampleStatus.ok) {
      none = step
      break
    }
    out[0]!.push(r.tokens[0]!)
    out[1]!.push(r.tokens[1]!)
    r = await ctx.step(Int32Array.of(r.tokens[0]!, r.tokens[1]!), Int32Array.of(pos, pos), Int32Array.of(0, 1), Int32Array.of(0, 1))
    pos++
  }
  t.ok(none > 0, `the grammar completed after ${none} tokens`)
  t.equal(r.status[0], SampleStatus.none, 'status 1: nothing is allowed')
  t.equal(r.tokens[0], -1, 'no token for it')
  t.equal(r.errors[0], '')
  t.ok(Number.isNaN(r.logprobs[0]!))
  t.equal(r.status[1], SampleStatus.ok)
  t.ok(r.tokens[1]! >= 0 && r.tokens[1] !== eos, 'the other sequence got a token')
  const text = m.detokenize(Int32Array.from(out[0]!), true, false)
  t.doesNotThrow(() => JSON.parse(text), `sequence 0 wrote one JSON object: ${JSON.stringify(text)}`)
  // nothing was accepted: the grammar is where it was (complete) and refuses again; the other sequence goes on
  const again = await ctx.step(Int32Array.of(out[0]!.at(-1)!, r.tokens[1]!), Int32Array.of(pos, pos), Int32Array.of(0, 1), Int32Array.of(0, 1))
  t.same([...again.status], [SampleStatus.none, SampleStatus.ok])
})

t.test('out-of-vocabulary prompt tokens are refused before they reach a batch', async (t) => {
  const model = await loadModel(t)
  const n = model.facts.nVocab
  t.throws(() => model.generate(Int32Array.of(1, n, 5)), { code: 'invalid_token', status: 400, param: 'prompt', message: new RegExp(`prompt token ${n} at index 1 is outside the vocabulary \\(0\\.\\.${n - 1}\\)`) })
  t.throws(() => model.generate(Int32Array.of(-1)), { code: 'invalid_token' })
  t.throws(() => model.generate([1, 2] as unknown as Int32Array), { code: 'invalid_parameter', param: 'prompt' })
  const after = await collect(model.generate(Int32Array.of(1, 5, 6), { temperature: 0, maxTokens: 3 }))
  t.equal(after.result.completionTokens, 3, 'the next request runs')
})

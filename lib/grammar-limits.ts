// Bounds on a GBNF grammar, checked in TypeScript before llama.cpp sees it. llama.cpp's grammar code recurses
// and copies without limits, so a small request can end or stall the process (measured on this build, 8 MB
// main-thread stack; the check runs on the JS thread, as does llama.cpp's parse):
//   - parentheses nested ~19,000 deep overflow the stack in the recursive parser (a 38 KB request);
//   - a chain of ~70,000 rules each starting with the next overflows it in the left-recursion check;
//   - a chain of N rules each starting with the next and followed by more (`r1 ::= r2 "a"`) costs O(N²)
//     time and memory when the first stacks are built: 3,000 rules take 2.7 s, 10,000 take 60 s and 690 MB;
//   - every way to reach a first character becomes one stack, compared with every other one: 65,000 of them
//     (16 rules of two alternatives each, 350 bytes) took 96 s; 4,000 alternatives take ~0.3 s;
//   - repetitions copy their item: `"<1000 chars>"{2000}` is 2 M elements (1 KB of grammar, 4 s);
//   - `x{5,3}` (max below min) makes llama.cpp create rules until memory runs out.
// Nesting and reference depth sit 150x and 70x below the stack overflows; the cost limits keep llama.cpp's
// check of one grammar under ~0.3 s (measured at each limit). All sit far above every grammar in
// llama.cpp's grammars/ and the 79 expected outputs of its json-schema-to-grammar tests (at most 1.4 KB,
// nesting 4, 90 rules, 478 elements, reference depth 7, 12 ways); test/04-native-faults.test.ts also admits
// an enum of 1,000 values and json-schema-style repetitions {0,2000}.
//
// The scan mirrors llama.cpp's parser (src/llama-grammar.cpp): the same tokens, the same rules made for groups
// and repetitions, the same element counts, the same syntax errors (llama.cpp prints the whole grammar to stderr
// on each, so they are answered here; a differential test checks that the scan parses whatever llama.cpp
// accepts). Size and nesting come first, from a lexical scan that does not depend on the parse.
import { HearthError } from './errors.js'

export interface GrammarLimits {
  /** UTF-8 bytes of the grammar text */
  maxBytes: number
  /** parentheses open at once (llama.cpp's parser recurses once per level) */
  maxNesting: number
  /** rules, counting those llama.cpp makes for groups and repetitions */
  maxRules: number
  /** grammar elements after repetitions are expanded, as llama.cpp stores them */
  maxElements: number
  /** longest chain of rules each reached at the start of the previous one */
  maxRefDepth: number
  /** ways to reach a first character from one rule (llama.cpp keeps one parse stack per way) */
  maxAlternatives: number
}

export const grammarLimits: Readonly<GrammarLimits> = Object.freeze({
  maxBytes: 256 * 1024,
  maxNesting: 128,
  maxRules: 32768,
  maxElements: 512 * 1024,
  maxRefDepth: 1024,
  maxAlternatives: 4096,
})

/** What the scan measured of a grammar within the limits. */
export interface GrammarMeasure {
  bytes: number
  nesting: number
  rules: number
  elements: number
  refDepth: number
  alternatives: number
}

const limitNames: Record<keyof GrammarLimits, string> = {
  maxBytes: 'size in bytes',
  maxNesting: 'nesting depth of parentheses',
  maxRules: 'number of rules (with those made for groups and repetitions)',
  maxElements: 'number of elements after expanding repetitions',
  maxRefDepth: 'depth of rules referenced at the start of another',
  maxAlternatives: 'number of ways to reach a first character',
}

/** Thrown inside the scan: a limit was passed (the scan stops at once, before doing more work). */
class LimitExceeded {
  constructor(
    readonly limit: keyof GrammarLimits,
    /** the value measured, or where the scan stopped counting (`exact` false) */
    readonly value: number,
    readonly exact = false,
    readonly detail = '',
  ) {}
}

/** Thrown inside the scan: the grammar does not parse (llama.cpp would refuse it too, printing all of it). */
class SyntaxStop {
  constructor(readonly message: string) {}
}

/**
 * Throws `grammar_too_complex` (param `grammar`) naming the limit and the value when `gbnf` passes one of
 * `limits`, and `invalid_grammar` when it does not parse (with the line and column), is left-recursive, or
 * repeats an item {m,n} times with n < m (llama.cpp loops on those). What passes still goes to llama.cpp's own
 * check, which also refuses `<token>` texts that are not one token of the vocabulary.
 */
export function checkGrammarLimits(gbnf: string, limits: Readonly<GrammarLimits> = grammarLimits): GrammarMeasure {
  try {
    return measure(gbnf, limits)
  } catch (err) {
    if (err instanceof LimitExceeded) {
      const value = `${err.exact ? '' : 'at least '}${err.value}`
      throw new HearthError(
        'grammar_too_complex',
        `grammar too complex: its ${limitNames[err.limit]} is ${value}${err.detail}, over the limit of ${limits[err.limit]}`,
        'grammar',
      )
    }
    throw err
  }
}

/** Measures `gbnf`, stopping at the first limit passed (then throws LimitExceeded). */
function measure(gbnf: string, limits: Readonly<GrammarLimits>): GrammarMeasure {
  // llama.cpp reads a C string: nothing after a NUL exists for it
  const nul = gbnf.indexOf('\0')
  const src = nul >= 0 ? gbnf.slice(0, nul) : gbnf
  const bytes = Buffer.byteLength(gbnf, 'utf8')
  if (bytes > limits.maxBytes) throw new LimitExceeded('maxBytes', bytes, true)
  const nesting = lexicalNesting(src, limits.maxNesting)
  let parsed: Parsed
  try {
    parsed = new Parser(src, limits).parse()
  } catch (err) {
    if (err instanceof SyntaxStop) throw new HearthError('invalid_grammar', `the grammar does not parse: ${err.message}`, 'grammar')
    throw err
  }
  const { depth, alternatives } = analyse(parsed, limits)
  return { bytes, nesting, rules: parsed.rules.length, elements: parsed.elements, refDepth: depth, alternatives }
}

/**
 * Deepest parenthesis nesting outside strings, character classes, tokens and comments. Independent of the
 * parser so that even a grammar the parser gives up on cannot reach llama.cpp's recursion unbounded.
 */
function lexicalNesting(src: string, max: number): number {
  let depth = 0
  let deepest = 0
  const n = src.length
  for (let i = 0; i < n; i++) {
    const c = src.charCodeAt(i)
    if (c === 0x28 /* ( */) {
      if (++depth > deepest) {
        deepest = depth
        if (deepest > max) throw new LimitExceeded('maxNesting', deepest)
      }
    } else if (c === 0x29 /* ) */) {
      if (depth > 0) depth--
    } else if (c === 0x22 /* " */ || c === 0x5b /* [ */) {
      const close = c === 0x22 ? 0x22 : 0x5d
      for (i++; i < n && src.charCodeAt(i) !== close; i++) if (src.charCodeAt(i) === 0x5c /* \ */) i++
    } else if (c === 0x23 /* # */) {
      while (i + 1 < n && src.charCodeAt(i + 1) !== 0x0a && src.charCodeAt(i + 1) !== 0x0d) i++
    } else if (c === 0x3c /* < */) {
      while (i + 1 < n && src.charCodeAt(i + 1) !== 0x3e /* > */) i++
    }
  }
  return deepest
}

/**
 * One rule as llama.cpp stores it, compressed: each alternative is a list of items, a rule id (>= 0) or a
 * terminal of -x elements (a literal string or a character class; `.`, tokens: one element).
 */
interface Rule {
  alts: number[][]
  /** the rule's name; a generated rule is named after the rule it appears in, with its id (see ruleName) */
  base: string
  generated: boolean
  defined: boolean
}

interface Parsed {
  rules: Rule[]
  /** elements llama.cpp stores: characters, references, one ALT between alternatives and one END per rule */
  elements: number
}

/** The empty alternative of a rule made for a repetition, shared: there can be tens of thousands. */
const EMPTY: number[] = []

function ruleName(rule: Rule, id: number): string {
  return rule.generated ? `${rule.base}_${id}` : rule.base
}

const MAX_REPETITION_THRESHOLD = 2000 // llama.cpp's own bound on one repetition
const U64_MAX = 2n ** 64n - 1n

/** Elements of a list of items: a reference is one, a terminal item -x is x. */
function elementsOf(items: number[]): number {
  let n = 0
  for (const item of items) n += item >= 0 ? 1 : -item
  return n
}

function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** A mirror of llama_grammar_parser that counts instead of building; positions index UTF-16 code units. */
class Parser {
  readonly #src: string
  readonly #limits: Readonly<GrammarLimits>
  readonly #symbols = new Map<string, number>()
  readonly #rules: Rule[] = []
  #elements = 0

  constructor(src: string, limits: Readonly<GrammarLimits>) {
    this.#src = src
    this.#limits = limits
  }

  #at(i: number): number {
    // NaN past the end, as '\0' ends llama.cpp's C string
    return this.#src.charCodeAt(i)
  }

  parse(): Parsed {
    let pos = this.#space(0, true)
    while (pos < this.#src.length) pos = this.#rule(pos)
    // llama.cpp refuses undefined rules; the checks below need every reference resolved
    if (this.#rules.length === 0) throw new SyntaxStop('it has no rules')
    const undefinedRule = this.#rules.find((r) => !r.defined)
    if (undefinedRule) throw new SyntaxStop(`rule ${undefinedRule.base} is used but never defined`)
    if (!this.#symbols.has('root')) throw new SyntaxStop('it has no root rule')
    return { rules: this.#rules, elements: this.#elements }
  }

  #newRule(base: string, generated: boolean): number {
    const id = this.#rules.length
    if (id + 1 > this.#limits.maxRules) throw new LimitExceeded('maxRules', id + 1)
    this.#rules.push({ alts: [], base, generated, defined: false })
    return id
  }

  #symbol(name: string): number {
    let id = this.#symbols.get(name)
    if (id === undefined) {
      id = this.#newRule(name, false)
      this.#symbols.set(name, id)
    }
    return id
  }

  /** A rule llama.cpp makes for a group or a repetition (it counts among the symbols: see a group's n_prev_rules). */
  #generated(base: string): number {
    return this.#newRule(base, true)
  }

  #addElements(n: number): void {
    this.#elements += n
    if (this.#elements > this.#limits.maxElements) throw new LimitExceeded('maxElements', this.#elements)
  }

  /** Items were counted as they were parsed; this adds one ALT between alternatives and one END. */
  #define(id: number, alts: number[][]): void {
    const rule = this.#rules[id]!
    // a rule defined twice keeps the last definition, as llama.cpp's add_rule does
    if (rule.defined) this.#addElements(-rule.alts.length - rule.alts.reduce((k, alt) => k + elementsOf(alt), 0))
    this.#addElements(alts.length)
    rule.alts = alts
    rule.defined = true
  }

  #space(pos: number, newlineOk: boolean): number {
    for (;;) {
      const c = this.#at(pos)
      if (c === 0x20 || c === 0x09 || (newlineOk && (c === 0x0d || c === 0x0a))) pos++
      else if (c === 0x23) {
        while (pos < this.#src.length && this.#at(pos) !== 0x0d && this.#at(pos) !== 0x0a) pos++
      } else return pos
    }
  }

  #name(pos: number): number {
    const start = pos
    while (isWordChar(this.#at(pos))) pos++
    if (pos === start) throw this.#stop(pos, 'expecting a rule name')
    return pos
  }

  /** A syntax error at `pos`, with its line and column and the text there. */
  #stop(pos: number, what: string): SyntaxStop {
    const before = this.#src.slice(0, pos)
    const line = before.split('\n').length
    const column = pos - before.lastIndexOf('\n')
    const near = this.#src.slice(pos, pos + 20).split('\n')[0]!
    return new SyntaxStop(`${what} at line ${line}, column ${column}${near ? ` (${JSON.stringify(near)})` : ' (end of input)'}`)
  }

  /** One character of a literal or class, as parse_char reads it; returns the position after it. */
  #char(pos: number): number {
    const c = this.#at(pos)
    if (c === 0x5c) {
      const e = this.#at(pos + 1)
      const hex = e === 0x78 ? 2 : e === 0x75 ? 4 : e === 0x55 ? 8 : 0
      if (hex) {
        for (let k = 0; k < hex; k++) if (!/[0-9a-fA-F]/.test(this.#src[pos + 2 + k] ?? '')) throw this.#stop(pos, `expecting ${hex} hex digits`)
        return pos + 2 + hex
      }
      if ('trn\\"[]-'.includes(this.#src[pos + 1] ?? '\0')) return pos + 2
      throw this.#stop(pos, 'unknown escape')
    }
    if (Number.isNaN(c)) throw this.#stop(pos, 'unexpected end of input')
    // one code point (a surrogate pair is one UTF-8 sequence for llama.cpp)
    return c >= 0xd800 && c <= 0xdbff ? pos + 2 : pos + 1
  }

  #token(pos: number): number {
    if (this.#at(pos) !== 0x3c) throw this.#stop(pos, "expecting '<'")
    pos++
    if (this.#at(pos) === 0x5b) {
      const end = this.#int(pos + 1)
      if (this.#at(end) !== 0x5d || this.#at(end + 1) !== 0x3e) throw this.#stop(end, "expecting ']>'")
      return end + 2
    }
    while (pos < this.#src.length && this.#at(pos) !== 0x3e) pos++
    if (this.#at(pos) !== 0x3e) throw this.#stop(pos, "expecting '>'")
    return pos + 1
  }

  #int(pos: number): number {
    const start = pos
    while (isDigit(this.#at(pos))) pos++
    if (pos === start) throw this.#stop(pos, 'expecting an integer')
    return pos
  }

  #rule(pos: number): number {
    const nameEnd = this.#name(pos)
    const name = this.#src.slice(pos, nameEnd)
    pos = this.#space(nameEnd, false)
    const id = this.#symbol(name)
    if (!this.#src.startsWith('::=', pos)) throw this.#stop(pos, "expecting '::='")
    pos = this.#alternates(this.#space(pos + 3, true), name, id, false)
    const c = this.#at(pos)
    if (c === 0x0d) pos += this.#at(pos + 1) === 0x0a ? 2 : 1
    else if (c === 0x0a) pos++
    else if (pos < this.#src.length) throw this.#stop(pos, 'expecting a newline or the end')
    return this.#space(pos, true)
  }

  #alternates(pos: number, name: string, id: number, nested: boolean): number {
    const alts: number[][] = []
    let seq: number[] = []
    pos = this.#sequence(pos, name, seq, nested)
    alts.push(seq)
    while (this.#at(pos) === 0x7c /* | */) {
      seq = []
      pos = this.#sequence(this.#space(pos + 1, true), name, seq, nested)
      alts.push(seq)
    }
    this.#define(id, alts)
    return pos
  }

  #sequence(pos: number, name: string, seq: number[], nested: boolean): number {
    let lastSymStart = seq.length
    let nPrevRules = 1
    const pushTerminal = (elements: number) => {
      if (elements > 0) seq.push(-elements)
      this.#addElements(elements)
    }
    while (pos < this.#src.length) {
      const c = this.#at(pos)
      if (c === 0x22 /* " */) {
        pos++
        lastSymStart = seq.length
        nPrevRules = 1
        let n = 0
        while (this.#at(pos) !== 0x22) {
          if (pos >= this.#src.length) throw this.#stop(pos, 'unexpected end of input in a string')
          pos = this.#char(pos)
          n++
        }
        pushTerminal(n)
        pos = this.#space(pos + 1, nested)
      } else if (c === 0x5b /* [ */) {
        pos++
        if (this.#at(pos) === 0x5e /* ^ */) pos++
        lastSymStart = seq.length
        nPrevRules = 1
        let n = 0
        while (this.#at(pos) !== 0x5d /* ] */) {
          if (pos >= this.#src.length) throw this.#stop(pos, 'unexpected end of input in a character class')
          pos = this.#char(pos)
          n++
          if (this.#at(pos) === 0x2d /* - */ && this.#at(pos + 1) !== 0x5d) {
            if (pos + 1 >= this.#src.length) throw this.#stop(pos + 1, 'unexpected end of input in a character class')
            pos = this.#char(pos + 1)
            n++
          }
        }
        pushTerminal(n)
        pos = this.#space(pos + 1, nested)
      } else if (c === 0x3c /* < */ || c === 0x21 /* ! */) {
        pos = this.#token(c === 0x21 ? pos + 1 : pos)
        lastSymStart = seq.length
        nPrevRules = 1
        pushTerminal(1)
        pos = this.#space(pos, nested)
      } else if (isWordChar(c)) {
        const end = this.#name(pos)
        const ref = this.#symbol(this.#src.slice(pos, end))
        pos = this.#space(end, nested)
        lastSymStart = seq.length
        nPrevRules = 1
        seq.push(ref)
        this.#addElements(1)
      } else if (c === 0x28 /* ( */) {
        pos = this.#space(pos + 1, true)
        // llama.cpp's symbol_ids holds every rule, named or generated: the rules made inside the group
        const before = this.#rules.length
        const sub = this.#generated(name)
        pos = this.#alternates(pos, name, sub, true)
        nPrevRules = Math.max(1, this.#rules.length - before)
        lastSymStart = seq.length
        seq.push(sub)
        this.#addElements(1)
        if (this.#at(pos) !== 0x29 /* ) */) throw this.#stop(pos, "expecting ')'")
        pos = this.#space(pos + 1, nested)
      } else if (c === 0x2e /* . */) {
        lastSymStart = seq.length
        nPrevRules = 1
        pushTerminal(1)
        pos = this.#space(pos + 1, nested)
      } else if (c === 0x2a /* * */ || c === 0x2b /* + */ || c === 0x3f /* ? */) {
        pos = this.#space(pos + 1, nested)
        nPrevRules = this.#repeat(name, seq, lastSymStart, nPrevRules, c === 0x2b ? 1n : 0n, c === 0x3f ? 1n : null)
      } else if (c === 0x7b /* { */) {
        pos = this.#space(pos + 1, nested)
        if (!isDigit(this.#at(pos))) throw this.#stop(pos, 'expecting an integer')
        let end = this.#int(pos)
        const min = this.#u64(this.#src.slice(pos, end))
        pos = this.#space(end, nested)
        let max: bigint | null = null
        if (this.#at(pos) === 0x7d /* } */) {
          max = min
          pos = this.#space(pos + 1, nested)
        } else if (this.#at(pos) === 0x2c /* , */) {
          pos = this.#space(pos + 1, nested)
          if (isDigit(this.#at(pos))) {
            end = this.#int(pos)
            max = this.#u64(this.#src.slice(pos, end))
            pos = this.#space(end, nested)
          }
          if (this.#at(pos) !== 0x7d) throw this.#stop(pos, "expecting '}'")
          pos = this.#space(pos + 1, nested)
        } else {
          throw this.#stop(pos, "expecting ',' or '}'")
        }
        if (min > MAX_REPETITION_THRESHOLD) {
          throw this.#stop(pos, `an item repeated at least ${min} times: llama.cpp allows at most ${MAX_REPETITION_THRESHOLD}`)
        }
        if (max !== null && max > MAX_REPETITION_THRESHOLD) max = null
        if (max !== null && max < min) {
          // llama.cpp computes max - min unsigned and creates rules until memory runs out
          throw new HearthError('invalid_grammar', `the grammar repeats an item {${min},${max}} times: the maximum is below the minimum`, 'grammar')
        }
        nPrevRules = this.#repeat(name, seq, lastSymStart, nPrevRules, min, max)
      } else {
        break
      }
    }
    return pos
  }

  #u64(digits: string): bigint {
    const v = BigInt(digits)
    if (v > U64_MAX) throw new SyntaxStop(`the repetition count ${digits} is too large`) // std::stoull throws
    return v
  }

  /** handle_repetitions: S{min,max} (max null = unbounded) applied to seq[lastSymStart..]; returns n_prev_rules. */
  #repeat(name: string, seq: number[], lastSymStart: number, nPrevRules: number, min: bigint, max: bigint | null): number {
    if (lastSymStart === seq.length) throw new SyntaxStop('a repetition (* + ? {}) has no item before it')
    const prev = seq.slice(lastSymStart)
    const minN = Number(min)
    const totalRules = max !== null && max > 0n ? Number(max) : minN > 0 ? minN : 1
    if (nPrevRules * totalRules > MAX_REPETITION_THRESHOLD) {
      throw new SyntaxStop(`a repetition makes ${nPrevRules * totalRules} copies of rules: llama.cpp allows at most ${MAX_REPETITION_THRESHOLD}`)
    }
    const prevElements = elementsOf(prev)
    if (minN === 0) {
      seq.length = lastSymStart
      this.#addElements(-prevElements)
    } else {
      this.#addElements((minN - 1) * prevElements)
      for (let i = 1; i < minN; i++) for (const item of prev) seq.push(item)
    }
    const nOpt = max === null ? 1 : Number(max) - minN
    let lastRec = 0
    for (let i = 0; i < nOpt; i++) {
      const id = this.#generated(name)
      const rec = prev.slice()
      if (i > 0 || max === null) rec.push(max === null ? id : lastRec)
      this.#addElements(elementsOf(rec))
      this.#define(id, [rec, EMPTY])
      lastRec = id
    }
    if (nOpt > 0) {
      seq.push(lastRec)
      this.#addElements(1)
    }
    return nPrevRules * totalRules
  }
}

/**
 * Over the parsed rules: refuses left recursion (llama.cpp would too, after recursing along it), and measures
 * the longest chain of leftmost references (llama.cpp's left-recursion check recurses along it, and builds
 * stacks that deep) and the most ways a rule reaches a first character. Iterative: the grammar may be deep.
 */
function analyse({ rules }: Parsed, limits: Readonly<GrammarLimits>): { depth: number; alternatives: number } {
  const n = rules.length
  // llama.cpp's "may be empty": an alternative with no elements at all
  const mayBeEmpty = rules.map((r) => r.alts.some((a) => a.length === 0))
  const nullable = nullableRules(rules, mayBeEmpty)
  // the rules llama.cpp's left-recursion check recurses into from each rule: edges[first[id] .. first[id + 1])
  const first = new Int32Array(n + 1)
  const edges: number[] = []
  rules.forEach((r, id) => {
    first[id] = edges.length
    for (const alt of r.alts) {
      for (const item of alt) {
        if (item < 0) break
        edges.push(item)
        if (!mayBeEmpty[item]) break
      }
    }
  })
  first[n] = edges.length
  const depth = new Int32Array(n) // longest leftmost chain from each rule, counted in rules
  const state = new Uint8Array(n) // 0 new, 1 on the DFS path, 2 done
  let deepest = 0
  for (let root = 0; root < n; root++) {
    if (state[root] === 2) continue
    const stack: number[] = [root]
    const next: number[] = [0]
    state[root] = 1
    while (stack.length > 0) {
      const top = stack.length - 1
      const id = stack[top]!
      if (first[id]! + next[top]! < first[id + 1]!) {
        const child = edges[first[id]! + next[top]!++]!
        if (state[child] === 1) {
          throw new HearthError('invalid_grammar', `the grammar is left-recursive: rule ${ruleName(rules[child]!, child)} can reach itself before any character`, 'grammar')
        }
        if (state[child] === 0) {
          state[child] = 1
          stack.push(child)
          next.push(0)
        }
        continue
      }
      let d = 1
      for (let e = first[id]!; e < first[id + 1]!; e++) d = Math.max(d, depth[edges[e]!]! + 1)
      depth[id] = d
      if (d > deepest) {
        deepest = d
        if (deepest > limits.maxRefDepth) throw new LimitExceeded('maxRefDepth', deepest, false, ` (at rule ${ruleName(rules[id]!, id)})`)
      }
      state[id] = 2
      stack.pop()
      next.pop()
    }
  }
  return { depth: deepest, alternatives: firstWays(rules, nullable, limits) }
}

/** Rules that can derive the empty string (every item of some alternative is such a rule). Linear worklist. */
function nullableRules(rules: Rule[], mayBeEmpty: boolean[]): boolean[] {
  const nullable = mayBeEmpty.slice()
  const remaining: number[] = [] // per alternative: references not yet known nullable (-1: has a terminal)
  const owner: number[] = []
  const users: (number[] | undefined)[] = new Array<number[] | undefined>(rules.length)
  rules.forEach((r, id) => {
    for (const alt of r.alts) {
      const a = remaining.length
      owner.push(id)
      remaining.push(alt.some((item) => item < 0) ? -1 : alt.length)
      if (remaining[a]! > 0) for (const item of alt) (users[item] ??= []).push(a)
    }
  })
  const queue: number[] = []
  nullable.forEach((v, id) => v && queue.push(id))
  while (queue.length > 0) {
    for (const a of users[queue.pop()!] ?? EMPTY) {
      if (--remaining[a]! === 0 && !nullable[owner[a]!]) {
        nullable[owner[a]!] = true
        queue.push(owner[a]!)
      }
    }
  }
  return nullable
}

/**
 * Ways to reach a first character from each rule, the most of them: a terminal is one way, a reference adds
 * its rule's ways and goes on past it when that rule is nullable (the stack pops to what follows, counted
 * there). llama.cpp builds one stack per way and compares each with the others. A reference back into the
 * rules being counted adds nothing (llama.cpp dedups those stacks).
 */
function firstWays(rules: Rule[], nullable: boolean[], limits: Readonly<GrammarLimits>): number {
  const n = rules.length
  const ways = new Float64Array(n)
  const state = new Uint8Array(n)
  let most = 0
  for (let root = 0; root < n; root++) {
    if (state[root] === 2) continue
    // frames: rule id, alternative and item where the scan for unvisited references goes on
    const ids: number[] = [root]
    const altAt: number[] = [0]
    const itemAt: number[] = [0]
    state[root] = 1
    while (ids.length > 0) {
      const top = ids.length - 1
      const alts = rules[ids[top]!]!.alts
      let pushed = false
      while (altAt[top]! < alts.length) {
        const alt = alts[altAt[top]!]!
        const item = alt[itemAt[top]!]
        if (item === undefined || item < 0) {
          altAt[top]!++
          itemAt[top] = 0
        } else if (state[item] === 0) {
          state[item] = 1
          ids.push(item)
          altAt.push(0)
          itemAt.push(0)
          pushed = true
          break
        } else if (!nullable[item]) {
          altAt[top]!++
          itemAt[top] = 0
        } else {
          itemAt[top]!++
        }
      }
      if (pushed) continue
      const id = ids[top]!
      let total = 0
      for (const alt of alts) {
        for (const item of alt) {
          if (item < 0) {
            total += 1
            break
          }
          if (state[item] === 2) total += ways[item]!
          if (!nullable[item]) break
        }
      }
      ways[id] = Math.min(total, 1e15)
      if (ways[id]! > most) {
        most = ways[id]!
        if (most > limits.maxAlternatives) throw new LimitExceeded('maxAlternatives', most, true, ` (from rule ${ruleName(rules[id]!, id)})`)
      }
      state[id] = 2
      ids.pop()
      altAt.pop()
      itemAt.pop()
    }
  }
  return most
}

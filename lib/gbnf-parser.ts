// A mirror of llama.cpp's GBNF parser (src/llama-grammar.cpp) that counts instead of building: the same tokens, the
// same rules made for groups and repetitions, the same element counts and the same syntax errors. Used by
// grammar-limits.ts to measure a grammar before llama.cpp sees it.
import { HearthError } from './errors.js'
import type { GrammarLimits } from './grammar-limits.js'

/** Thrown inside the scan: a limit was passed (the scan stops at once, before doing more work). */
export class LimitExceeded {
  constructor(
    readonly limit: keyof GrammarLimits,
    /** the value measured, or where the scan stopped counting (`exact` false) */
    readonly value: number,
    readonly exact = false,
    readonly detail = '',
  ) {}
}

/** Thrown inside the scan: the grammar does not parse (llama.cpp would refuse it too, printing all of it). */
export class SyntaxStop {
  constructor(readonly message: string) {}
}

/**
 * One rule as llama.cpp stores it, compressed: each alternative is a list of items, a rule id (>= 0) or a
 * terminal of -x elements (a literal string or a character class; `.`, tokens: one element).
 */
export interface Rule {
  alts: number[][]
  /** the rule's name; a generated rule is named after the rule it appears in, with its id (see ruleName) */
  base: string
  generated: boolean
  defined: boolean
}

export interface Parsed {
  rules: Rule[]
  /** elements llama.cpp stores: characters, references, one ALT between alternatives and one END per rule */
  elements: number
}

/** The empty alternative of a rule made for a repetition, shared: there can be tens of thousands. */
export const EMPTY: number[] = []

export function ruleName(rule: Rule, id: number): string {
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
export class Parser {
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

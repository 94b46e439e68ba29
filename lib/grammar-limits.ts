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
import { EMPTY, LimitExceeded, Parser, ruleName, SyntaxStop, type Parsed, type Rule } from './gbnf-parser.js'

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

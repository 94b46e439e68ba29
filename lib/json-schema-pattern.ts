// What llama.cpp's converter (common/json-schema-to-grammar.cpp, `_pattern_to_rule`) makes of a `pattern`,
// found without running it: the same scan over the same regex subset, in the same order, so that the verdict
// (and the first reason) is the one the converter would reach. It turns a pattern into grammar only when the
// pattern is anchored (`^...$`) and uses: literals, `.`, groups `(...)` and `(?:...)`, alternation `|`,
// character classes `[...]`, the quantifiers `* + ?` and `{n}` `{m,}` `{m,n}` `{,n}`, and the escapes
// `\x..` `\u....` `\U........` `\t \r \n \\ \" \[ \] \-` plus escaped regex metacharacters (`\. \( \* ...`).
// Anything else (`\d \w \s \b`, backreferences, lookaround, named groups, flags, unanchored patterns, inner
// anchors) is "unsupported": the converter warns and accepts any string. Malformed patterns (unbalanced
// parentheses, an unterminated class, a quantifier with nothing before it) are "invalid": it fails.

/** What llama.cpp's converter does with a pattern. */
export type PatternVerdict =
  | { status: 'invalid'; reason: string }
  | { status: 'unsupported'; reason: string }
  | {
      status: 'ok'
      /** per quantifier, the repetitions llama.cpp's grammar parser expands it into ({m,n}: the larger bound, {m,}: m, `* + ?`: 1) */
      counts: number[]
      /** a quantifier whose lower bound is above its upper one: llama.cpp's grammar parser loops forever on it */
      reversed: string | null
      /**
       * the heaviest chain of quantifiers nested inside a counted repetition ({m,n} with n > 1), as the product
       * of their counts (`*`, `+` count 2, `?` 1); 0 when no counted repetition holds another quantifier
       */
      nestedWeight: number
      /** the quantifier text where nestedWeight was reached */
      nestedAt: string | null
      /**
       * the first part that can match `"`, `\` or a control character, or null. The converter writes what the
       * pattern matches into the JSON string as is, unescaped, so such a character would end the string early or
       * make the output invalid JSON (`.` is any character but a line break, quotes and backslashes included)
       */
      jsonUnsafe: string | null
    }

const MAX_PATTERN_DEPTH = 100 // the converter's own MAX_PATTERN_DEPTH
const NON_LITERAL = new Set(['|', '.', '(', ')', '[', ']', '{', '}', '*', '+', '?', '^', '$'])
const ESCAPED_META = new Set(['^', '$', '.', '[', ']', '(', ')', '|', '{', '}', '*', '+', '?'])
const INT_MAX = 2147483647

/** Length of a GBNF escape at `pos` (what llama.cpp's grammar parser reads), 0 when it is none. */
function gbnfEscapeLength(p: string, pos: number): number {
  if (pos + 1 >= p.length || p[pos] !== '\\') return 0
  let nHex: number
  switch (p[pos + 1]) {
    case 'x': nHex = 2; break
    case 'u': nHex = 4; break
    case 'U': nHex = 8; break
    case 't': case 'r': case 'n': case '\\': case '"': case '[': case ']': case '-':
      return 2
    default:
      return 0
  }
  if (pos + 2 + nHex > p.length) return 0
  for (let i = pos + 2; i < pos + 2 + nHex; i++) if (!/[0-9a-fA-F]/.test(p[i]!)) return 0
  return 2 + nHex
}

/** The code point a GBNF escape of length `len` at `pos` stands for. */
function escapeCodePoint(p: string, pos: number, len: number): number {
  const c = p[pos + 1]!
  if (c === 'x' || c === 'u' || c === 'U') return parseInt(p.slice(pos + 2, pos + len), 16)
  return ({ t: 9, r: 13, n: 10 } as Record<string, number>)[c] ?? c.codePointAt(0)!
}

/** Characters a JSON string cannot hold unescaped. */
const needsEscape = (cp: number): boolean => cp < 0x20 || cp === 0x22 || cp === 0x5c

/**
 * Can a character class (the text between `[` and `]`, read as llama.cpp's grammar parser reads it: escapes,
 * ranges `a-b`, a leading `^` negating it) match a character that needs escaping in JSON?
 */
function classNeedsEscape(body: string): boolean {
  const negated = body.startsWith('^')
  const ranges: Array<[number, number]> = []
  let i = negated ? 1 : 0
  const atom = (): number => {
    if (body[i] === '\\') {
      const len = gbnfEscapeLength(body, i)
      const cp = escapeCodePoint(body, i, len)
      i += len
      return cp
    }
    const cp = body.codePointAt(i)!
    i += cp > 0xffff ? 2 : 1
    return cp
  }
  while (i < body.length) {
    const lo = atom()
    let hi = lo
    if (body[i] === '-' && i + 1 < body.length) {
      i++
      hi = atom()
    }
    ranges.push([lo, hi])
  }
  const hits = (cp: number) => ranges.some(([lo, hi]) => lo <= cp && cp <= hi)
  const escaped = [...Array.from({ length: 0x20 }, (_, k) => k), 0x22, 0x5c]
  return negated ? !escaped.every(hits) : escaped.some(hits)
}

/** std::stoi: leading whitespace, a sign, digits, anything after ignored; null where it throws. */
function stoi(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s)
  if (!m) return null
  const n = Number(m[1])
  return n > INT_MAX || n < -INT_MAX - 1 ? null : n
}

/** One item of a sequence: is it a plain literal, and the heaviest quantifier chain inside it (0: none). */
interface Item {
  literal: boolean
  weight: number
  alternation?: boolean
}

class Stop {
  constructor(readonly status: 'invalid' | 'unsupported', readonly reason: string) {}
}

export function analyzePattern(pattern: string): PatternVerdict {
  try {
    return scan(pattern)
  } catch (e) {
    if (e instanceof Stop) return { status: e.status, reason: e.reason }
    throw e
  }
}

function scan(pattern: string): PatternVerdict {
  if (pattern.length < 2 || pattern[0] !== '^' || pattern[pattern.length - 1] !== '$') {
    throw new Stop('unsupported', "not anchored with '^' and '$'")
  }
  const sub = pattern.slice(1, -1)
  const n = sub.length
  const counts: number[] = []
  let reversed: string | null = null
  let nestedWeight = 0
  let nestedAt: string | null = null
  let jsonUnsafe: string | null = null
  // one sequence per open group; the converter recurses here, a stack does the same
  const frames: Item[][] = [[]]
  let i = 0
  while (i < n) {
    const seq = frames[frames.length - 1]!
    const c = sub[i]!
    if (c === '.') {
      jsonUnsafe ??= '.'
      seq.push({ literal: false, weight: 0 })
      i++
    } else if (c === '(') {
      i++
      if (i < n && sub[i] === '?') {
        if (i + 1 < n && sub[i + 1] === ':') i += 2
        else throw new Stop('unsupported', 'unsupported group syntax')
      }
      frames.push([])
      if (frames.length - 1 > MAX_PATTERN_DEPTH) throw new Stop('unsupported', 'pattern nesting too deep')
    } else if (c === ')') {
      i++
      if (frames.length === 1) throw new Stop('invalid', 'unbalanced parentheses')
      const inner = frames.pop()!
      frames[frames.length - 1]!.push({ literal: false, weight: Math.max(0, ...inner.map((it) => it.weight)) })
    } else if (c === '^' || c === '$') {
      throw new Stop('unsupported', 'anchor inside the pattern')
    } else if (c === '[') {
      const start = i
      i++
      while (i < n && sub[i] !== ']') {
        if (sub[i] === '\\') {
          const len = gbnfEscapeLength(sub, i)
          if (len === 0) throw new Stop('unsupported', `unsupported escape in character class: ${sub.slice(i, i + 2)}`)
          i += len
        } else {
          i++
        }
      }
      if (i >= n) throw new Stop('invalid', 'unterminated character class')
      i++
      if (classNeedsEscape(sub.slice(start + 1, i - 1))) jsonUnsafe ??= sub.slice(start, i)
      seq.push({ literal: false, weight: 0 })
    } else if (c === '|') {
      seq.push({ literal: false, weight: 0, alternation: true })
      i++
    } else if (c === '*' || c === '+' || c === '?') {
      // the converter appends the quantifier to whatever came last; after `|` or `(` that is no item at all,
      // and llama.cpp's grammar parser then refuses the grammar
      const last = seq[seq.length - 1]
      if (!last || last.alternation) throw new Stop('invalid', 'nothing to repeat')
      quantify(last, c === '?' ? 1 : 2, false, c)
      counts.push(1)
      i++
    } else if (c === '{') {
      const start = i
      i++
      while (i < n && sub[i] !== '}') i++
      if (i >= n) throw new Stop('unsupported', 'unterminated curly brackets')
      const inside = sub.slice(start + 1, i)
      i++
      const nums = inside.split(',')
      if (nums.length !== 1 && nums.length !== 2) throw new Stop('unsupported', 'wrong number of values in curly brackets')
      let min = 0
      let max = Infinity
      if (nums.length === 1) {
        const v = stoi(nums[0]!)
        if (v === null) throw new Stop('unsupported', 'invalid number in curly brackets')
        min = max = v
      } else {
        if (nums[0] !== '') {
          const v = stoi(nums[0]!)
          if (v === null) throw new Stop('unsupported', 'invalid number in curly brackets')
          min = v
        }
        if (nums[1] !== '') {
          const v = stoi(nums[1]!)
          if (v === null) throw new Stop('unsupported', 'invalid number in curly brackets')
          max = v
        }
      }
      const last = seq[seq.length - 1]
      if (!last || last.alternation) throw new Stop('invalid', 'nothing to repeat')
      const text = `{${inside}}`
      if (min < 0 || max < 0) throw new Stop('invalid', `negative count in ${text}`)
      if (min > max) reversed ??= text
      counts.push(max === Infinity ? min : Math.max(min, max))
      quantify(last, max === Infinity ? Math.max(min, 2) : max, max > 1 || (max === Infinity && min > 1), text)
    } else {
      // a run of literal characters, stopping before one that a quantifier applies to
      let literal = ''
      while (i < n) {
        const ch = sub[i]!
        if (ch === '\\') {
          if (i === n - 1) throw new Stop('invalid', 'trailing backslash')
          const next = sub[i + 1]!
          if (ESCAPED_META.has(next)) {
            literal += next
            i += 2
          } else {
            const len = gbnfEscapeLength(sub, i)
            if (len === 0) throw new Stop('unsupported', `unsupported escape: ${sub.slice(i, i + 2)}`)
            if (needsEscape(escapeCodePoint(sub, i, len))) jsonUnsafe ??= sub.slice(i, i + len)
            literal += sub.slice(i, i + len)
            i += len
          }
        } else if (ch === '"') {
          jsonUnsafe ??= '"'
          literal += '\\"'
          i++
        } else if (!NON_LITERAL.has(ch) && (i === n - 1 || literal === '' || sub[i + 1] === '.' || !NON_LITERAL.has(sub[i + 1]!))) {
          if (needsEscape(ch.charCodeAt(0))) jsonUnsafe ??= JSON.stringify(ch)
          literal += ch
          i++
        } else {
          break
        }
      }
      if (literal === '') throw new Stop('unsupported', `unsupported character: ${c}`)
      seq.push({ literal: true, weight: 0 })
    }
  }
  if (frames.length !== 1) throw new Stop('invalid', 'unbalanced parentheses')
  return { status: 'ok', counts, reversed, nestedWeight, nestedAt, jsonUnsafe }

  function quantify(item: Item, count: number, counted: boolean, text: string): void {
    const weight = count * Math.max(1, item.weight)
    if (counted && item.weight > 0 && weight > nestedWeight) {
      nestedWeight = weight
      nestedAt = text
    }
    item.literal = false
    item.weight = weight
  }
}

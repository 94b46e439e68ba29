// A SentencePiece ("llama") vocabulary of any size that tokenizes English sensibly, with the special tokens of
// a chat format: ChatML for the random-weight benchmark models, each family's own for test/models. Real
// vocabularies (Qwen's and Llama 3's byte-level BPE) can't be shipped or downloaded here, so the word pieces
// come from the built-in tiny model's own SentencePiece vocabulary and the rest is filled with compounds of
// those pieces: the vocabulary then has the real size (which is what costs time in the output layer and the
// sampler), English still splits into word-like pieces, and the text a random model emits is made of
// pseudo-words of realistic length rather than byte soup or empty pieces.
import { readGGUFMetadata } from './gguf-reader.js'

// llama_token_type (llama.h)
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, BYTE: 6 } as const

/**
 * A token outside the word pieces. CONTROL tokens are parsed from text only with parse_special and rendered
 * only when asked; USER_DEFINED ones are always parsed and always rendered as their text (llama-vocab.cpp).
 */
export interface SpecialToken {
  text: string
  type: typeof TokenType.UNKNOWN | typeof TokenType.CONTROL | typeof TokenType.USER_DEFINED
}

/** Where special tokens go: `head` before the 256 byte tokens, `tail` right after them (before the words). */
export interface SpecialLayout {
  head: readonly SpecialToken[]
  tail: readonly SpecialToken[]
}

export interface VocabTokens {
  tokens: string[]
  scores: Float32Array
  types: Int32Array
  /** id of a special token by its text; throws for texts that are not special tokens of this vocabulary */
  special(text: string): number
}

export interface Vocab {
  tokens: string[]
  scores: Float32Array
  types: Int32Array
  bos: number
  /** <|im_end|>: both EOS and EOT, so it ends an assistant turn */
  eos: number
  unk: number
  imStart: number
  imEnd: number
}

/** ChatML, as Qwen2.5 writes it (without Qwen's default system prompt). */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"

const WORD_START = '\u2581' // SentencePiece's "▁": the piece begins a word

interface Piece {
  text: string
  score: number
}

/** The tiny model's learned word pieces (NORMAL tokens), best-scored first. */
function donorPieces(donorPath: string): Piece[] {
  const meta = readGGUFMetadata(donorPath)
  const tokens = meta.get('tokenizer.ggml.tokens')
  const scores = meta.get('tokenizer.ggml.scores')
  const types = meta.get('tokenizer.ggml.token_type')
  if (meta.get('tokenizer.ggml.model') !== 'llama' || !Array.isArray(tokens) || !Array.isArray(scores) || !Array.isArray(types)) {
    throw new Error(`${donorPath} has no SentencePiece vocabulary`)
  }
  const pieces: Piece[] = []
  tokens.forEach((t, i) => {
    if (types[i] === TokenType.NORMAL && typeof t === 'string') pieces.push({ text: t, score: Number(scores[i]) })
  })
  return pieces.sort((a, b) => b.score - a.score)
}

/**
 * Up to `n` new pieces "<word piece><continuation>", frequent pairs first (by the sum of both ranks), none
 * equal to a piece in `taken`. They get the lowest score, so SentencePiece merges them only after every
 * donor merge: the donor's segmentation stays, and a known word pair occasionally becomes one token.
 */
function* compounds(pieces: Piece[], taken: Set<string>): Generator<string> {
  const heads = pieces.filter((p) => p.text.startsWith(WORD_START) && p.text.length > 1).map((p) => p.text)
  const tails = [
    ...new Set(pieces.map((p) => (p.text.startsWith(WORD_START) ? p.text.slice(1) : p.text)).filter((t) => t.length > 0)),
  ]
  for (let d = 0; d < heads.length + tails.length; d++) {
    for (let i = Math.max(0, d - tails.length + 1); i <= Math.min(d, heads.length - 1); i++) {
      const text = heads[i]! + tails[d - i]!
      if (!taken.has(text)) {
        taken.add(text)
        yield text
      }
    }
  }
}

const CHATML_LAYOUT: SpecialLayout = {
  head: [
    { text: '<unk>', type: TokenType.UNKNOWN },
    { text: '<s>', type: TokenType.CONTROL },
    { text: '</s>', type: TokenType.CONTROL },
  ],
  tail: [
    { text: '<|im_start|>', type: TokenType.CONTROL },
    { text: '<|im_end|>', type: TokenType.CONTROL },
  ],
}

/**
 * The benchmark vocabulary. Layout: <unk> <s> </s>, <0x00>..<0xFF>, <|im_start|> <|im_end|>, the donor's word
 * pieces, then compounds up to exactly `size` tokens.
 */
export function syntheticVocab(size: number, donorPath: string): Vocab {
  const v = vocabWithSpecials(size, donorPath, CHATML_LAYOUT)
  const imEnd = v.special('<|im_end|>')
  return {
    tokens: v.tokens,
    scores: v.scores,
    types: v.types,
    bos: v.special('<s>'),
    eos: imEnd,
    unk: v.special('<unk>'),
    imStart: v.special('<|im_start|>'),
    imEnd,
  }
}

/**
 * Layout: `layout.head`, <0x00>..<0xFF>, `layout.tail`, the donor's word pieces, then compounds (and, past
 * those, numbered placeholders) up to exactly `size` tokens. Every text is unique: llama.cpp asserts that its
 * token-to-id map is as large as the vocabulary.
 */
export function vocabWithSpecials(size: number, donorPath: string, layout: SpecialLayout): VocabTokens {
  const tokens: string[] = []
  const scores: number[] = []
  const types: number[] = []
  const specials = new Map<string, number>()
  const add = (text: string, type: number, score = 0) => {
    tokens.push(text)
    types.push(type)
    scores.push(score)
    return tokens.length - 1
  }
  const addSpecial = (t: SpecialToken) => {
    if (specials.has(t.text)) throw new Error(`special token ${t.text} is listed twice`)
    specials.set(t.text, add(t.text, t.type))
  }
  layout.head.forEach(addSpecial)
  // byte fallback: any text that no piece covers still tokenizes, byte by byte
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, TokenType.BYTE)
  layout.tail.forEach(addSpecial)

  const pieces = donorPieces(donorPath)
  const taken = new Set(tokens)
  for (const p of pieces) {
    if (taken.has(p.text)) continue
    taken.add(p.text)
    add(p.text, TokenType.NORMAL, p.score)
  }
  const fillerScore = Math.min(...pieces.map((p) => p.score)) - 1
  const fill = compounds(pieces, taken)
  for (let k = 0; tokens.length < size; k++) {
    const next = fill.next()
    add(next.done ? `<filler_${k}>` : next.value, TokenType.NORMAL, fillerScore)
  }
  if (tokens.length > size) throw new Error(`vocabulary of ${size} is too small for ${tokens.length} base tokens`)
  return {
    tokens,
    scores: Float32Array.from(scores),
    types: Int32Array.from(types),
    special(text: string): number {
      const id = specials.get(text)
      if (id === undefined) throw new Error(`${text} is not a special token of this vocabulary`)
      return id
    },
  }
}

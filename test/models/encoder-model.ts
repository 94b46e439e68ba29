// Writes the test embedding model: a tiny random-weight encoder in llama.cpp's BERT layout (the "bert"
// architecture: deps/llama.cpp/src/models/bert.cpp) with a WordPiece vocabulary (tokenizer model "bert", WPM),
// mean pooling and non-causal attention, as converted bge/MiniLM/e5 GGUFs are. It lets the EmbeddingModel path
// (`type: "embeddings"`) run on a real llama.cpp model; its vectors mean nothing, but they are the model's own.
import { bool, f32, f32Array, i32Array, str, strArray, u32, writeGGUF, type MetadataValue, type TensorSpec } from '../../bench/gguf-writer.js'
import { floatBytes, randomFloats } from '../../bench/random-weights.js'
import { TokenType } from '../../bench/synthetic-vocab.js'

export const ENCODER_SHAPE = {
  hidden: 64,
  layers: 2,
  heads: 4,
  ffn: 128,
  contextLength: 512,
  tokenTypes: 2,
  eps: 1e-12,
  /** llama_pooling_type: 1 = mean (bge-small and MiniLM pool by mean; CLS would be 2) */
  pooling: 1,
} as const

const LLAMA_FTYPE_ALL_F32 = 0

/** BERT's special tokens, in the order their ids are given below. */
export const ENCODER_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const
const [PAD, UNK, CLS, SEP, MASK] = [0, 1, 2, 3, 4]

// llama.cpp's WPM tokenizer marks a word's start with U+2581 (its converter rewrites "word" to "▁word" and
// "##piece" to "piece"), so a word-initial piece is "▁x" and a continuation piece is "x". Every lower-case
// letter and digit exists in both forms, so any ASCII word tokenizes without [UNK].
const WORDS = ['the', 'a', 'of', 'and', 'to', 'in', 'is', 'hello', 'world', 'cat', 'dog', 'sat', 'on', 'mat', 'embed', 'text']
const PIECES = ['ing', 'ed', 's', 'er', 'ly']
const CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789']
const PUNCT = [...'.,!?;:\'"()-']

export function encoderVocab(): { tokens: string[]; types: number[] } {
  // a Set: llama.cpp asserts that no text is two tokens ("▁a" is a word and a letter)
  const tokens = [...new Set([
    ...ENCODER_SPECIALS,
    ...WORDS.map((w) => `\u2581${w}`),
    ...PIECES,
    ...CHARS.map((c) => `\u2581${c}`),
    ...CHARS,
    // punctuation is split into words of its own, so only the word-initial form is ever looked up
    ...PUNCT.map((c) => `\u2581${c}`),
  ])]
  const types = tokens.map((_, i) => (i < ENCODER_SPECIALS.length && i !== UNK ? TokenType.CONTROL : i === UNK ? TokenType.UNKNOWN : TokenType.NORMAL))
  return { tokens, types }
}

function metadata(vocab: { tokens: string[]; types: number[] }): Map<string, MetadataValue> {
  const s = ENCODER_SHAPE
  return new Map<string, MetadataValue>([
    ['general.architecture', str('bert')],
    ['general.name', str('BERT-style encoder, random weights (hearth test model)')],
    ['general.file_type', u32(LLAMA_FTYPE_ALL_F32)],
    ['bert.context_length', u32(s.contextLength)],
    ['bert.embedding_length', u32(s.hidden)],
    ['bert.feed_forward_length', u32(s.ffn)],
    ['bert.block_count', u32(s.layers)],
    ['bert.attention.head_count', u32(s.heads)],
    ['bert.attention.layer_norm_epsilon', f32(s.eps)],
    ['bert.attention.causal', bool(false)],
    ['bert.pooling_type', u32(s.pooling)],
    ['tokenizer.ggml.model', str('bert')],
    ['tokenizer.ggml.tokens', strArray(vocab.tokens)],
    ['tokenizer.ggml.scores', f32Array(new Float32Array(vocab.tokens.length))],
    ['tokenizer.ggml.token_type', i32Array(vocab.types)],
    ['tokenizer.ggml.token_type_count', u32(s.tokenTypes)],
    // BERT's input is [CLS] text [SEP]: llama.cpp adds the BOS id ([CLS]) in front and the separator at the end
    ['tokenizer.ggml.bos_token_id', u32(CLS)],
    ['tokenizer.ggml.cls_token_id', u32(CLS)],
    ['tokenizer.ggml.seperator_token_id', u32(SEP)],
    ['tokenizer.ggml.padding_token_id', u32(PAD)],
    ['tokenizer.ggml.unknown_token_id', u32(UNK)],
    ['tokenizer.ggml.mask_token_id', u32(MASK)],
    ['tokenizer.ggml.add_bos_token', bool(true)],
    ['tokenizer.ggml.add_sep_token', bool(true)],
  ])
}

function tensors(nVocab: number): TensorSpec[] {
  const s = ENCODER_SHAPE
  const E = s.hidden
  const out: TensorSpec[] = []
  const add = (name: string, shape: number[], fill: 'random' | 'ones' | 'zeros') => {
    const count = shape.reduce((n, d) => n * d, 1)
    const values = () => (fill === 'random' ? new Float32Array(randomFloats(`bert-embed/${name}`, count).buffer) : new Float32Array(count).fill(fill === 'ones' ? 1 : 0))
    out.push({ name, type: 'F32', shape, data: () => [floatBytes(values())] })
  }
  add('token_embd.weight', [E, nVocab], 'random')
  add('token_types.weight', [E, s.tokenTypes], 'random')
  add('position_embd.weight', [E, s.contextLength], 'random')
  add('token_embd_norm.weight', [E], 'ones')
  add('token_embd_norm.bias', [E], 'zeros')
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}`
    for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
      add(`${b}.${p}.weight`, [E, E], 'random')
      add(`${b}.${p}.bias`, [E], 'random')
    }
    add(`${b}.attn_output_norm.weight`, [E], 'ones')
    add(`${b}.attn_output_norm.bias`, [E], 'zeros')
    add(`${b}.ffn_up.weight`, [E, s.ffn], 'random')
    add(`${b}.ffn_up.bias`, [s.ffn], 'random')
    add(`${b}.ffn_down.weight`, [s.ffn, E], 'random')
    add(`${b}.ffn_down.bias`, [E], 'random')
    add(`${b}.layer_output_norm.weight`, [E], 'ones')
    add(`${b}.layer_output_norm.bias`, [E], 'zeros')
  }
  return out
}

/** Writes the encoder to `path`; resolves to the file size. */
export async function writeEncoderModel(path: string): Promise<number> {
  const vocab = encoderVocab()
  return writeGGUF(path, metadata(vocab), tensors(vocab.tokens.length))
}

/** What the file's bytes depend on besides the code. */
export function encoderModelRecipe(): string {
  return JSON.stringify({ shape: ENCODER_SHAPE, vocab: encoderVocab() })
}

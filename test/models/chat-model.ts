// Writes one chat family's test model: a tiny random-weight llama with the family's special tokens in a
// synthetic SentencePiece vocabulary (bench/synthetic-vocab.ts) and the family's real chat template.
//
// Random weights alone make a model that often emits control tokens (ending generation after a few tokens,
// or producing "<tool_call>" by chance) and lone bytes (invalid UTF-8). Here hidden channel 0 of every token
// embedding is a large constant, so the final normalised hidden state always has a large positive channel 0,
// and the output rows of special and byte tokens have a negative weight there: those tokens sit ~24 logits
// below the word pieces (at temperature 2, about one in a million sampled tokens). The model then writes
// pseudo-words until max_tokens, a stop string or the context ends it, and only a grammar or a logit bias makes
// it emit a special or byte token (both still can).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bool, f32Array, i32Array, str, strArray, u32, writeGGUF, type MetadataValue, type TensorSpec } from '../../bench/gguf-writer.js'
import { shapeMetadata, tensorPlan, type ModelShape, type TensorPlan } from '../../bench/model-shapes.js'
import { floatBytes, randomFloats } from '../../bench/random-weights.js'
import { TokenType, vocabWithSpecials, type VocabTokens } from '../../bench/synthetic-vocab.js'
import { defaultModelPath } from '../../lib/index.js'
import { packageRoot } from '../../lib/native.js'
import type { ChatFamily } from './chat-families.js'

export const templatesDir = join(packageRoot, 'deps', 'llama.cpp', 'models', 'templates')

/** The shape every chat test model has: small enough that 100 tokens take milliseconds on one core. */
export const TINY_SHAPE: Omit<ModelShape, 'id' | 'realName' | 'addBos'> = {
  arch: 'llama',
  vocab: 2048,
  hidden: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 128,
  contextLength: 4096,
  ropeTheta: 10000,
  rmsEps: 1e-5,
  qkvBias: false,
}

const LLAMA_FTYPE_ALL_F32 = 0
/** channel 0 of every embedding (the others are N(0, 0.02)): it dominates the RMS norm and is ~8 after it */
const BIAS_CHANNEL = 1
/** channel 0 of the output rows of special and byte tokens: ~ -24 logits */
const SUPPRESS = -3

/** The family's template text, read from llama.cpp's source tree (fetched at install). */
export function templateText(family: ChatFamily): string {
  const path = join(templatesDir, family.template)
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const why = (err as Error).message
    throw new Error(
      `${family.file}: cannot read its chat template (${why}); \`node scripts/fetch-llama.mjs\` fetches llama.cpp's ` +
        'source, as `npm install` does when it builds the addon',
    )
  }
}

function familyVocab(family: ChatFamily): VocabTokens {
  return vocabWithSpecials(TINY_SHAPE.vocab, defaultModelPath, { head: family.specials, tail: [] })
}

function tokenizerMetadata(family: ChatFamily, vocab: VocabTokens, template: string): Map<string, MetadataValue> {
  const id = (text: string) => u32(vocab.special(text))
  const m = new Map<string, MetadataValue>([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', strArray(vocab.tokens)],
    ['tokenizer.ggml.scores', f32Array(vocab.scores)],
    ['tokenizer.ggml.token_type', i32Array(vocab.types)],
    ['tokenizer.ggml.bos_token_id', id(family.bos)],
    ['tokenizer.ggml.eos_token_id', id(family.eos)],
  ])
  if (family.eot) m.set('tokenizer.ggml.eot_token_id', id(family.eot))
  if (family.eom) m.set('tokenizer.ggml.eom_token_id', id(family.eom))
  if (family.pad) m.set('tokenizer.ggml.padding_token_id', id(family.pad))
  if (family.unk) m.set('tokenizer.ggml.unknown_token_id', id(family.unk))
  m.set('tokenizer.ggml.add_bos_token', bool(family.addBos))
  m.set('tokenizer.ggml.add_eos_token', bool(false))
  // the real tokenizers are byte-level BPE, which adds no space after a special token; SentencePiece would
  m.set('tokenizer.ggml.add_space_prefix', bool(false))
  m.set('tokenizer.chat_template', str(template))
  return m
}

function tensors(family: ChatFamily, shape: ModelShape, vocab: VocabTokens): TensorSpec[] {
  const seeded = (name: string, count: number) => new Float32Array(randomFloats(`${family.file}/${name}`, count).buffer)
  const values = (t: TensorPlan): Float32Array => {
    const count = t.shape.reduce((n, d) => n * d, 1)
    if (t.fill === 'ones') return new Float32Array(count).fill(1)
    if (t.fill !== 'random') throw new Error(`${t.name}: no ${t.fill} tensors in test models`)
    const v = seeded(t.name, count)
    if (t.name === 'token_embd.weight') for (let i = 0; i < count; i += shape.hidden) v[i] = BIAS_CHANNEL
    return v
  }
  // F32 throughout: the files are tiny, and later copies quantise from exact values
  const plan = tensorPlan(shape).map((t): TensorSpec => ({ name: t.name, type: 'F32', shape: t.shape, data: () => [floatBytes(values(t))] }))
  // untied output rows, so the bias channel can push tokens down without touching their embeddings
  const output: TensorSpec = {
    name: 'output.weight',
    type: 'F32',
    shape: [shape.hidden, shape.vocab],
    data: () => {
      const rows = seeded('output.weight', shape.hidden * shape.vocab)
      vocab.types.forEach((type, token) => {
        rows[token * shape.hidden] = type === TokenType.NORMAL ? 0 : SUPPRESS
      })
      return [floatBytes(rows)]
    },
  }
  return [...plan, output]
}

/** Writes `family`'s model to `path`; resolves to the file size. */
export async function writeChatModel(family: ChatFamily, path: string): Promise<number> {
  const shape: ModelShape = { ...TINY_SHAPE, id: family.file, realName: family.realName, addBos: family.addBos }
  const template = templateText(family)
  const vocab = familyVocab(family)
  const metadata = shapeMetadata(shape, `${family.realName} tokenizer and chat template, random weights (hearth test model)`)
  metadata.set('general.file_type', u32(LLAMA_FTYPE_ALL_F32))
  for (const [key, value] of tokenizerMetadata(family, vocab, template)) metadata.set(key, value)
  return writeGGUF(path, metadata, tensors(family, shape, vocab))
}

/** What the file's bytes depend on besides the code: the family's entry, the shape, and its template text. */
export function chatModelRecipe(family: ChatFamily): string {
  return JSON.stringify({ family, shape: TINY_SHAPE, bias: [BIAS_CHANNEL, SUPPRESS], template: templateText(family) })
}

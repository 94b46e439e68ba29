// The exact shapes of two real small chat models, as llama.cpp's loaders expect them
// (deps/llama.cpp/src/models/qwen2.cpp and llama.cpp, llama_model_base::load_hparams), and the GGUF
// metadata and tensor list of a random-weight F16 file of that shape.
import { bool, f32, f32Array, i32Array, str, strArray, u32, type MetadataValue, type TensorType } from './gguf-writer.js'
import { CHATML_TEMPLATE, type Vocab } from './synthetic-vocab.js'

export interface ModelShape {
  /** file-name stem, e.g. qwen2.5-0.5b */
  id: string
  /** the real model it copies */
  realName: string
  arch: 'qwen2' | 'llama'
  vocab: number
  hidden: number
  layers: number
  heads: number
  kvHeads: number
  ffn: number
  contextLength: number
  ropeTheta: number
  rmsEps: number
  /** q/k/v projections with biases (Qwen2) */
  qkvBias: boolean
  /** Llama 3.x "llama3" RoPE frequency scaling, stored as the rope_freqs tensor */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  /** whether the tokenizer adds BOS, as the real model's does */
  addBos: boolean
}

export const SHAPES = {
  // Qwen/Qwen2.5-0.5B-Instruct config.json; embeddings tied (no output.weight)
  'qwen2.5-0.5b': {
    id: 'qwen2.5-0.5b',
    realName: 'Qwen2.5-0.5B-Instruct',
    arch: 'qwen2',
    vocab: 151936,
    hidden: 896,
    layers: 24,
    heads: 14,
    kvHeads: 2,
    ffn: 4864,
    contextLength: 32768,
    ropeTheta: 1e6,
    rmsEps: 1e-6,
    qkvBias: true,
    addBos: false,
  },
  // meta-llama/Llama-3.2-1B config.json; embeddings tied
  'llama-3.2-1b': {
    id: 'llama-3.2-1b',
    realName: 'Llama-3.2-1B',
    arch: 'llama',
    vocab: 128256,
    hidden: 2048,
    layers: 16,
    heads: 32,
    kvHeads: 8,
    ffn: 8192,
    contextLength: 131072,
    ropeTheta: 500000,
    rmsEps: 1e-5,
    qkvBias: false,
    llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
    addBos: true,
  },
} satisfies Record<string, ModelShape>

export type ShapeId = keyof typeof SHAPES

/** What a tensor holds, so the generator knows how to fill it. */
export type TensorFill = 'random' | 'ones' | 'rope-freqs'

export interface TensorPlan {
  name: string
  type: TensorType
  shape: number[]
  fill: TensorFill
}

const headDim = (s: ModelShape) => s.hidden / s.heads

/**
 * Tensors in the order convert_hf_to_gguf.py writes them. Matrices are F16 and 1-D tensors F32, as in real
 * F16 conversions (llama.cpp's quantiser also leaves 1-D tensors in F32). No output.weight: both models tie
 * it to token_embd, and the loaders fall back to token_embd when it is absent.
 */
export function tensorPlan(s: ModelShape): TensorPlan[] {
  const kv = headDim(s) * s.kvHeads
  const plan: TensorPlan[] = []
  const matrix = (name: string, cols: number, rows: number) => plan.push({ name, type: 'F16', shape: [cols, rows], fill: 'random' })
  const vector = (name: string, n: number, fill: TensorFill) => plan.push({ name, type: 'F32', shape: [n], fill })

  // the llama loader reads blk.0's rope_freqs under this global name (TENSOR_DUPLICATED for other layers)
  if (s.llama3Rope) vector('rope_freqs.weight', headDim(s) / 2, 'rope-freqs')
  matrix('token_embd.weight', s.hidden, s.vocab)
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}`
    vector(`${b}.attn_norm.weight`, s.hidden, 'ones')
    matrix(`${b}.attn_q.weight`, s.hidden, s.hidden)
    matrix(`${b}.attn_k.weight`, s.hidden, kv)
    matrix(`${b}.attn_v.weight`, s.hidden, kv)
    if (s.qkvBias) {
      vector(`${b}.attn_q.bias`, s.hidden, 'random')
      vector(`${b}.attn_k.bias`, kv, 'random')
      vector(`${b}.attn_v.bias`, kv, 'random')
    }
    matrix(`${b}.attn_output.weight`, s.hidden, s.hidden)
    vector(`${b}.ffn_norm.weight`, s.hidden, 'ones')
    matrix(`${b}.ffn_gate.weight`, s.hidden, s.ffn)
    matrix(`${b}.ffn_up.weight`, s.hidden, s.ffn)
    matrix(`${b}.ffn_down.weight`, s.ffn, s.hidden)
  }
  vector('output_norm.weight', s.hidden, 'ones')
  return plan
}

/** Elements of all tensors, as llama_model_n_params counts them (rope_freqs included). */
export function parameterCount(s: ModelShape): number {
  return tensorPlan(s).reduce((n, t) => n + t.shape.reduce((a, d) => a * d, 1), 0)
}

/** Llama 3's per-frequency RoPE divisors (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors). */
export function llama3RopeFactors(s: ModelShape): Float32Array {
  const r = s.llama3Rope
  if (!r) throw new Error(`${s.id} has no llama3 rope scaling`)
  const dim = headDim(s)
  const lowWavelen = r.originalContext / r.lowFreqFactor
  const highWavelen = r.originalContext / r.highFreqFactor
  const out = new Float32Array(dim / 2)
  for (let i = 0; i < dim / 2; i++) {
    const wavelen = (2 * Math.PI) / (1 / s.ropeTheta ** ((2 * i) / dim))
    if (wavelen < highWavelen) out[i] = 1
    else if (wavelen > lowWavelen) out[i] = r.factor
    else {
      const smooth = (r.originalContext / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor)
      out[i] = 1 / ((1 - smooth) / r.factor + smooth)
    }
  }
  return out
}

const LLAMA_FTYPE_MOSTLY_F16 = 1

/** The general and hyperparameter keys convert_hf_to_gguf.py writes for an F16 file of this shape. */
export function shapeMetadata(s: ModelShape, name: string): Map<string, MetadataValue> {
  const a = s.arch
  const m = new Map<string, MetadataValue>([
    ['general.architecture', str(a)],
    ['general.name', str(name)],
    ['general.file_type', u32(LLAMA_FTYPE_MOSTLY_F16)],
    [`${a}.block_count`, u32(s.layers)],
    [`${a}.context_length`, u32(s.contextLength)],
    [`${a}.embedding_length`, u32(s.hidden)],
    [`${a}.feed_forward_length`, u32(s.ffn)],
    [`${a}.attention.head_count`, u32(s.heads)],
    [`${a}.attention.head_count_kv`, u32(s.kvHeads)],
    [`${a}.rope.freq_base`, f32(s.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(s.rmsEps)],
  ])
  if (a === 'llama') {
    m.set('llama.vocab_size', u32(s.vocab))
    // checked against head size by the llama loader ("invalid n_rot")
    m.set('llama.rope.dimension_count', u32(headDim(s)))
  }
  return m
}

/** GGUF metadata of the F16 benchmark file: the keys convert_hf_to_gguf.py writes for the real model, and the vocab. */
export function modelMetadata(s: ModelShape, vocab: Vocab): Map<string, MetadataValue> {
  const m = shapeMetadata(s, `${s.realName} shape, random weights (hearth bench)`)
  m.set('tokenizer.ggml.model', str('llama'))
  m.set('tokenizer.ggml.tokens', strArray(vocab.tokens))
  m.set('tokenizer.ggml.scores', f32Array(vocab.scores))
  m.set('tokenizer.ggml.token_type', i32Array(vocab.types))
  m.set('tokenizer.ggml.bos_token_id', u32(vocab.bos))
  m.set('tokenizer.ggml.eos_token_id', u32(vocab.eos))
  // set explicitly: llama.cpp would otherwise guess EOT from token texts
  m.set('tokenizer.ggml.eot_token_id', u32(vocab.imEnd))
  m.set('tokenizer.ggml.unknown_token_id', u32(vocab.unk))
  m.set('tokenizer.ggml.add_bos_token', bool(s.addBos))
  m.set('tokenizer.ggml.add_eos_token', bool(false))
  // SentencePiece's default would put a space in front of every text run after a special token
  // ("<|im_start|> user"); without it the ChatML prompt tokenizes and renders back exactly, as Qwen's does
  m.set('tokenizer.ggml.add_space_prefix', bool(false))
  m.set('tokenizer.chat_template', str(CHATML_TEMPLATE))
  return m
}

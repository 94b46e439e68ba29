// Random-weight vision projectors (mmproj GGUF files) in the layout of llama.cpp's "mlp" projector
// (tools/mtmd: clip.cpp's loader, models/llava.cpp's graph), the LLaVA family's: a ViT over square patches
// (SigLIP's shape: no class token, no pre-norm, a post-norm) whose second-to-last layer goes through a two-layer
// GELU MLP into the text model's embedding size. mtmd resizes every image to image_size and makes
// (image_size / patch_size)^2 embeddings of it. LLaVA-OneVision pairs this projector with Qwen2's text models,
// so the real-size shape (SIGLIP_SHAPE) runs beside bench's Qwen2.5-0.5B shape.
import { bool, f32Array, str, u32, f32, writeGGUF, type MetadataValue, type TensorSpec, type TensorType } from './gguf-writer.js'
import { floatBytes, randomFloats, randomHalves } from './random-weights.js'

export interface ProjectorShape {
  /** side of the square image the encoder sees, in pixels */
  imageSize: number
  patchSize: number
  /** the encoder's width, heads, FFN width and layers */
  hidden: number
  heads: number
  ffn: number
  layers: number
  /** the MLP's inner width */
  mlpHidden: number
  /** the text model's embedding size (the projector's output) */
  textHidden: number
  eps: number
  /** F16 for matrices (as converted projectors are), or F32 */
  type: TensorType
  /** standard deviation multiplier of the MLP's last layer: image embeddings comparable to token embeddings */
  outScale: number
}

/** SigLIP-so400m at 384 px (LLaVA-OneVision's encoder) into Qwen2.5-0.5B's 896: 729 embeddings per image. */
export const SIGLIP_SHAPE: ProjectorShape = {
  imageSize: 384,
  patchSize: 14,
  hidden: 1152,
  heads: 16,
  ffn: 4304,
  layers: 27,
  mlpHidden: 896,
  textHidden: 896,
  eps: 1e-6,
  type: 'F16',
  outScale: 1,
}

/** The test projector: 4 x 4 patches (16 embeddings per image) of width 32 into a 64-wide text model. */
export const TINY_PROJECTOR_SHAPE: ProjectorShape = {
  imageSize: 32,
  patchSize: 8,
  hidden: 32,
  heads: 2,
  ffn: 48,
  layers: 2,
  mlpHidden: 64,
  textHidden: 64,
  eps: 1e-6,
  type: 'F32',
  outScale: 25,
}

export function embeddingsPerImage(shape: ProjectorShape): number {
  // the patch convolution drops a remainder, as SigLIP's 384 px / 14 px patches (27 x 27) do
  return Math.floor(shape.imageSize / shape.patchSize) ** 2
}

/** Every tensor with its ggml shape (ne[0] first) and how it is filled. */
function plan(s: ProjectorShape): { name: string; shape: number[]; fill: 'random' | 'ones' | 'zeros'; matrix: boolean; scale?: number }[] {
  const E = s.hidden
  const out: ReturnType<typeof plan> = [
    { name: 'v.patch_embd.weight', shape: [s.patchSize, s.patchSize, 3, E], fill: 'random', matrix: true },
    { name: 'v.patch_embd.bias', shape: [E], fill: 'random', matrix: false },
    { name: 'v.position_embd.weight', shape: [E, embeddingsPerImage(s)], fill: 'random', matrix: false },
  ]
  for (let i = 0; i < s.layers; i++) {
    const b = `v.blk.${i}`
    for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      out.push({ name: `${b}.${p}.weight`, shape: [E, E], fill: 'random', matrix: true })
      out.push({ name: `${b}.${p}.bias`, shape: [E], fill: 'random', matrix: false })
    }
    for (const n of ['ln1', 'ln2']) {
      out.push({ name: `${b}.${n}.weight`, shape: [E], fill: 'ones', matrix: false })
      out.push({ name: `${b}.${n}.bias`, shape: [E], fill: 'zeros', matrix: false })
    }
    out.push({ name: `${b}.ffn_up.weight`, shape: [E, s.ffn], fill: 'random', matrix: true })
    out.push({ name: `${b}.ffn_up.bias`, shape: [s.ffn], fill: 'random', matrix: false })
    out.push({ name: `${b}.ffn_down.weight`, shape: [s.ffn, E], fill: 'random', matrix: true })
    out.push({ name: `${b}.ffn_down.bias`, shape: [E], fill: 'random', matrix: false })
  }
  out.push({ name: 'v.post_ln.weight', shape: [E], fill: 'ones', matrix: false })
  out.push({ name: 'v.post_ln.bias', shape: [E], fill: 'zeros', matrix: false })
  out.push({ name: 'mm.0.weight', shape: [E, s.mlpHidden], fill: 'random', matrix: true })
  out.push({ name: 'mm.0.bias', shape: [s.mlpHidden], fill: 'random', matrix: false })
  out.push({ name: 'mm.2.weight', shape: [s.mlpHidden, s.textHidden], fill: 'random', matrix: true, scale: s.outScale })
  out.push({ name: 'mm.2.bias', shape: [s.textHidden], fill: 'random', matrix: false })
  return out
}

function metadata(s: ProjectorShape, name: string): Map<string, MetadataValue> {
  return new Map<string, MetadataValue>([
    ['general.architecture', str('clip')],
    ['general.name', str(name)],
    ['general.description', str('random-weight mlp (LLaVA) projector made by hearth for tests and benchmarks')],
    ['general.file_type', u32(s.type === 'F16' ? 1 : 0)],
    ['clip.has_vision_encoder', bool(true)],
    ['clip.projector_type', str('mlp')],
    ['clip.use_gelu', bool(true)],
    ['clip.vision.image_size', u32(s.imageSize)],
    ['clip.vision.patch_size', u32(s.patchSize)],
    ['clip.vision.embedding_length', u32(s.hidden)],
    ['clip.vision.feed_forward_length', u32(s.ffn)],
    ['clip.vision.block_count', u32(s.layers)],
    ['clip.vision.projection_dim', u32(s.textHidden)],
    ['clip.vision.attention.head_count', u32(s.heads)],
    ['clip.vision.attention.layer_norm_epsilon', f32(s.eps)],
    ['clip.vision.image_mean', f32Array([0.5, 0.5, 0.5])],
    ['clip.vision.image_std', f32Array([0.5, 0.5, 0.5])],
  ])
}

/** Writes a projector of `shape` to `path` (seeded by `name`: the same arguments write the same bytes). */
export async function writeProjector(path: string, shape: ProjectorShape, name: string): Promise<number> {
  const tensors = plan(shape).map((t): TensorSpec => {
    const count = t.shape.reduce((n, d) => n * d, 1)
    const seed = `${name}/${t.name}`
    if (t.matrix && shape.type === 'F16' && t.scale === undefined) {
      return { name: t.name, type: 'F16', shape: t.shape, data: () => randomHalves(seed, count * 2) }
    }
    return {
      name: t.name,
      type: 'F32',
      shape: t.shape,
      data: () => {
        if (t.fill === 'ones') return [floatBytes(new Float32Array(count).fill(1))]
        if (t.fill === 'zeros') return [floatBytes(new Float32Array(count))]
        const v = new Float32Array(randomFloats(seed, count).buffer)
        if (t.scale !== undefined) for (let i = 0; i < v.length; i++) v[i]! *= t.scale
        return [floatBytes(v)]
      },
    }
  })
  return writeGGUF(path, metadata(shape, name), tensors)
}

/** What a projector file's bytes depend on besides this code. */
export function projectorRecipe(shape: ProjectorShape, name: string): string {
  return JSON.stringify({ shape, name, layout: 'mlp v1' })
}

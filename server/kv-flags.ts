// `hearth serve` flags for the KV cache and the RAM prompt cache, parsed into ModelOptions. Kept apart from
// cli.ts so the KV flags are one block there: their usage text, their parseArgs options, and this parser.
import { KV_LAYOUTS, type KvLayoutChoice } from '../lib/kv-layout.js'
import type { ModelOptions } from '../lib/model.js'
import { KV_CACHE_TYPES, type KvCacheType } from '../lib/native.js'

export const KV_FLAGS_USAGE = `  --kv-layout L        KV cache layout: auto, unified (one pool for all
                       sequences) or per-seq (a stream per sequence, each
                       attending over its own cells); default auto        [HEARTH_KV_LAYOUT]
  --cache-type-k T     K cache type: f16, q8_0 or q4_0; default f16           [HEARTH_CACHE_TYPE_K]
  --cache-type-v T     V cache type: f16, q8_0 or q4_0 (quantized needs
                       flash attention); default f16                         [HEARTH_CACHE_TYPE_V]
  --flash-attn M       flash attention: on, off or auto; default auto        [HEARTH_FLASH_ATTN]
  --cache-ram MIB      host RAM for prompts whose KV cells were given up, to
                       restore instead of recompute; 0 turns it off; default
                       a quarter of free memory, at most 8192                [HEARTH_CACHE_RAM]
`

export const KV_FLAG_OPTIONS = {
  'kv-layout': { type: 'string' },
  'cache-type-k': { type: 'string' },
  'cache-type-v': { type: 'string' },
  'flash-attn': { type: 'string' },
  'cache-ram': { type: 'string' },
} as const

type KvFlagValues = { [K in keyof typeof KV_FLAG_OPTIONS]?: string | undefined }

function oneOf<T extends string>(flag: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined || raw === '') return undefined
  if (!(allowed as readonly string[]).includes(raw)) throw new Error(`hearth: --${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`)
  return raw as T
}

/** The model options these flags (or their environment variables) set. */
export function kvFlagOptions(values: KvFlagValues, env: NodeJS.ProcessEnv): Partial<ModelOptions> {
  const pick = (flag: keyof KvFlagValues, name: string) => values[flag] ?? env[name]
  const out: Partial<ModelOptions> = {}
  const layout = oneOf<KvLayoutChoice>('kv-layout', pick('kv-layout', 'HEARTH_KV_LAYOUT'), KV_LAYOUTS)
  if (layout) out.kvLayout = layout
  const typeK = oneOf<KvCacheType>('cache-type-k', pick('cache-type-k', 'HEARTH_CACHE_TYPE_K'), KV_CACHE_TYPES)
  if (typeK) out.cacheTypeK = typeK
  const typeV = oneOf<KvCacheType>('cache-type-v', pick('cache-type-v', 'HEARTH_CACHE_TYPE_V'), KV_CACHE_TYPES)
  if (typeV) out.cacheTypeV = typeV
  const fa = oneOf('flash-attn', pick('flash-attn', 'HEARTH_FLASH_ATTN'), ['on', 'off', 'auto'] as const)
  if (fa) out.flashAttention = fa
  if (typeV && typeV !== 'f16' && fa === 'off') throw new Error(`hearth: --cache-type-v ${typeV} needs flash attention: drop --flash-attn off`)
  const ram = pick('cache-ram', 'HEARTH_CACHE_RAM')
  if (ram !== undefined && ram !== '') {
    const mib = Number(ram)
    if (!Number.isInteger(mib) || mib < 0) throw new Error(`hearth: --cache-ram must be a whole number of MiB >= 0, got ${JSON.stringify(ram)}`)
    out.cacheRamBytes = mib * 2 ** 20
  }
  return out
}

// How a context's KV cache is laid out, decided once when the context is created (--kv-layout).
//
// unified: one pool of cells for every sequence. A prefix is shared between sequences without a copy and one
//   long request may use more than its share of the cells, but every decoded token attends over the occupied
//   cells of all sequences (llama.cpp masks the others out, and still walks them).
// per-seq: one stream of kvSize / parallel cells per sequence (llama.cpp's non-unified cache). A token attends
//   over its own sequence's cells only, so a step costs what its own sequences hold; a shared prefix is copied
//   into each stream, and no request can hold more than its stream.
//
// auto: per-seq when every sequence can have its whole context in a stream of its own without a larger cache
// than the unified default (contextSize x parallel at most 16384 cells, or an explicit kvSize that holds it),
// else unified. Measured in DEVELOPERS.md ("KV layout"): per-seq decode steps were never slower from 2 sequences
// on, and grow much less with streams x context; a unified pool is kept where per-seq would have to shrink the
// context a request may use, or to grow the cache.
import { invalidParam } from './errors.js'

export type KvLayout = 'unified' | 'per-seq'
export type KvLayoutChoice = 'auto' | KvLayout

export const KV_LAYOUTS: readonly KvLayoutChoice[] = ['auto', 'unified', 'per-seq']

/** Cells the unified default gives all sequences together at most (ModelOptions.kvSize). */
export const UNIFIED_DEFAULT_MAX_CELLS = 16384

export interface LayoutInput {
  choice: KvLayoutChoice
  parallel: number
  /** tokens one sequence may hold */
  contextSize: number
  /** the cells asked for, if any */
  kvSize?: number | undefined
}

/** The layout for these options; throws invalid_parameter when per-seq is asked for with too small a kvSize. */
export function chooseKvLayout(o: LayoutInput): KvLayout {
  if (!KV_LAYOUTS.includes(o.choice)) throw invalidParam('kvLayout', `kvLayout must be one of ${KV_LAYOUTS.join(', ')}`)
  // one sequence: the two layouts are the same cache
  if (o.parallel <= 1) return 'unified'
  const full = o.contextSize * o.parallel
  if (o.choice === 'per-seq') {
    if (o.kvSize !== undefined && o.kvSize < full) {
      throw invalidParam('kvSize', `with kvLayout per-seq each of ${o.parallel} sequences gets kvSize / ${o.parallel} cells: kvSize must be at least contextSize x parallel = ${full}`)
    }
    return 'per-seq'
  }
  if (o.choice === 'unified') return 'unified'
  return (o.kvSize === undefined ? full <= UNIFIED_DEFAULT_MAX_CELLS : o.kvSize >= full) ? 'per-seq' : 'unified'
}

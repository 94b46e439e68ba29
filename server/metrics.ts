// Prometheus metrics: request counts, tokens, sequences, and latency histograms, rendered as text.

class Histogram {
  readonly buckets: number[]
  readonly counts: number[]
  sum = 0
  count = 0

  constructor(buckets: number[]) {
    this.buckets = buckets
    this.counts = buckets.map(() => 0)
  }

  observe(v: number): void {
    this.sum += v
    this.count++
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++
  }

  render(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`]
    this.buckets.forEach((b, i) => lines.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`))
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`)
    return lines.join('\n')
  }
}

export interface Gauges {
  active: number
  queued: number
  usedCells: number
  cells: number
  loaded: boolean
  /** the embedding queue (Model.embeddingStats) */
  embeddings: { requests: number; inputs: number; chunks: number; aborted: number }
  /** the host-RAM prompt caches of the loaded models, summed (lib/prompt-cache.ts) */
  ramCache: { entries: number; bytes: number; hits: number; misses: number; evictions: number; saves: number; restoredTokens: number }
}

export class Metrics {
  /** route -> status -> count */
  readonly #requests = new Map<string, Map<number, number>>()
  promptTokens = 0
  cachedTokens = 0
  generatedTokens = 0
  readonly ttft = new Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
  readonly tokenGap = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])

  request(route: string, status: number): void {
    let byStatus = this.#requests.get(route)
    if (!byStatus) this.#requests.set(route, (byStatus = new Map()))
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
  }

  render(g: Gauges): string {
    const out: string[] = []
    const counter = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`)
    const gauge = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`)
    out.push('# HELP hearth_requests_total HTTP requests by route and status', '# TYPE hearth_requests_total counter')
    for (const [route, byStatus] of this.#requests) {
      for (const [status, v] of byStatus) out.push(`hearth_requests_total{route="${route}",status="${status}"} ${v}`)
    }
    counter('hearth_prompt_tokens_total', 'prompt tokens received', this.promptTokens)
    counter('hearth_prompt_cached_tokens_total', 'prompt tokens served from the prompt cache', this.cachedTokens)
    counter('hearth_generated_tokens_total', 'tokens generated', this.generatedTokens)
    gauge('hearth_sequences_active', 'sequences decoding now', g.active)
    gauge('hearth_sequences_queued', 'requests waiting for a slot', g.queued)
    gauge('hearth_kv_cells_used', 'KV cache cells in use (shared prefixes once)', g.usedCells)
    gauge('hearth_kv_cells', 'KV cache cells in all', g.cells)
    gauge('hearth_model_loaded', '1 once the model is loaded', g.loaded ? 1 : 0)
    gauge('hearth_embedding_requests_queued', 'embedding requests admitted and not finished', g.embeddings.requests)
    gauge('hearth_embedding_inputs_queued', 'their inputs not yet embedded', g.embeddings.inputs)
    counter('hearth_embedding_chunks_total', 'embedding batches run (one llama_decode each)', g.embeddings.chunks)
    counter('hearth_embedding_requests_aborted_total', 'embedding requests dropped because the client went away', g.embeddings.aborted)
    const r = g.ramCache
    gauge('hearth_prompt_cache_ram_entries', 'prompts saved to host RAM (--cache-ram)', r.entries)
    gauge('hearth_prompt_cache_ram_bytes', 'host RAM those saved prompts take', r.bytes)
    counter('hearth_prompt_cache_ram_hits_total', 'requests whose prefix was restored from host RAM', r.hits)
    counter('hearth_prompt_cache_ram_misses_total', 'requests host RAM held nothing for beyond the KV cache', r.misses)
    counter('hearth_prompt_cache_ram_evictions_total', 'saved prompts dropped for room (the cap or the memory budget)', r.evictions)
    counter('hearth_prompt_cache_ram_saves_total', 'prompts saved to host RAM', r.saves)
    counter('hearth_prompt_cache_ram_restored_tokens_total', 'prompt tokens restored from host RAM instead of computed', r.restoredTokens)
    out.push(this.ttft.render('hearth_time_to_first_token_seconds', 'time from request to first generated token'))
    out.push(this.tokenGap.render('hearth_time_per_output_token_seconds', 'time between generated tokens of one sequence'))
    return out.join('\n') + '\n'
  }
}

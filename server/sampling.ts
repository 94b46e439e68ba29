// Wire sampling fields to the library's SamplingInput. The fields every generation endpoint shares are mapped by
// name (the wire name is the snake_case of the library's), so a new sampling parameter needs only its wire schema
// entry (schemas.ts) and its library definition (lib/params.ts). Token limits, stops and log-probabilities differ
// per endpoint and are mapped by each endpoint.
import { defaultSampling, type SamplingInput, type SamplingParams } from '../lib/params.js'

/** Sampling keys each endpoint maps itself. */
const PER_ENDPOINT = new Set<keyof SamplingParams>(['maxTokens', 'stop', 'logprobs', 'topLogprobs'])

export const SHARED_SAMPLING_KEYS = (Object.keys(defaultSampling) as (keyof SamplingParams)[]).filter((k) => !PER_ENDPOINT.has(k))

export function wireName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())
}

/** The shared sampling fields of a wire body, plus the endpoint's own (`extra`). Values are validated in lib. */
export function samplingFromWire(body: Record<string, unknown>, extra: SamplingInput): SamplingInput {
  const input: Record<string, unknown> = {}
  for (const key of SHARED_SAMPLING_KEYS) {
    const value = body[wireName(key)]
    if (value !== undefined) input[key] = value
  }
  return { ...(input as SamplingInput), ...extra }
}

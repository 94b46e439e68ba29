// Identifiers and timestamps as OpenAI's objects carry them.
import { randomBytes } from 'node:crypto'

export const SYSTEM_FINGERPRINT = 'hearth'

/** `chatcmpl-…`, `resp_…`, `call_…`: a prefix and 24 random hex digits. */
export function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

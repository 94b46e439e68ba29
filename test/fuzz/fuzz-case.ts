// One request the fuzzer sends, with what it needs to judge the answer and to print a reproducer.
import type { EndpointName } from './endpoints.js'
import { serialize, type FuzzValue } from './fuzz-value.js'

/** How the client walks away: never, mid-upload, right after sending, or after some bytes of the answer. */
export type AbortPlan = { at: 'mid-body' } | { at: 'after-send' } | { at: 'after-bytes'; bytes: number }

export type CaseKind = 'control' | 'mutation' | 'raw' | 'targeted' | 'path' | 'method' | 'header'

export interface FuzzCase {
  /** `chat#17`: endpoint and index in the run */
  id: string
  endpoint: EndpointName
  method: string
  /** path and query, percent-encoded as sent */
  path: string
  /** request headers besides Host and Content-Length; content-type null = none sent */
  contentType: string | null
  headers: Record<string, string>
  /** a body built as a value (minimisation edits it), raw bytes, or none */
  body: FuzzValue | Buffer | null
  kind: CaseKind
  /** the targeted case's name, for the known-failure list */
  targeted?: string
  /** what was done to the request, one line per change */
  label: string
  /** top-level wire fields this case changed (a 404 for a changed `model` fits, for instance) */
  touched: string[]
  /** statuses that fit; when absent the checker decides from the kind and what was touched */
  expect?: number[]
  abort?: AbortPlan
}

/** The body's bytes as sent. */
export function bodyBytes(c: Pick<FuzzCase, 'body'>): Buffer | null {
  if (c.body === null) return null
  if (Buffer.isBuffer(c.body)) return c.body
  return Buffer.from(serialize(c.body), 'utf8')
}

// Failures already known and being fixed elsewhere. The short fuzz test (test/19-fuzz.test.ts) skips cases
// matching an entry here so it can pass meanwhile; `npm run fuzz` still sends them unless --skip-known.
// THE LEAD EMPTIES THIS LIST WHEN MERGING THE FIXES; nothing else should ever be added to make a test pass.
import type { FuzzCase } from './fuzz-case.js'
import { isObject, type FuzzValue } from './fuzz-value.js'

export interface KnownFailure {
  name: string
  /** where it is being fixed */
  issue: string
  matches(c: FuzzCase): boolean
}

const field = (c: FuzzCase, k: string): FuzzValue | undefined => (isObject(c.body as FuzzValue) ? (c.body as Record<string, FuzzValue>)[k] : undefined)

export const KNOWN_FAILURES: KnownFailure[] = [
  {
    name: 'deep grammar crashes the server',
    issue: 'deep GBNF nesting overflows the native grammar parser',
    matches: (c) => typeof field(c, 'grammar') === 'string' && /[([]{1000}/.test(field(c, 'grammar') as string),
  },
  {
    name: 'json_object with ignore_eos crashes the server',
    issue: 'a grammar that completes while EOS is banned leaves no token to sample',
    matches: (c) => {
      const f = field(c, 'response_format') ?? (isObject(field(c, 'text')) ? (field(c, 'text') as Record<string, FuzzValue>).format : undefined)
      return field(c, 'ignore_eos') === true && (isObject(f) && f.type === 'json_object')
    },
  },
  {
    name: 'a request that can never fit gets 429',
    issue: 'more sequences than slots plus queue should be 400, not queue_full',
    matches: (c) => c.targeted === 'never-fits',
  },
]

export function knownFailure(c: FuzzCase, list: readonly KnownFailure[]): KnownFailure | null {
  return list.find((k) => k.matches(c)) ?? null
}

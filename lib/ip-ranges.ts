// IP addresses as numbers, and what kind of address each is: the facts the outbound fetch policy
// (outbound-fetch.ts) decides on. Pure functions, no DNS. The special ranges are IANA's special-purpose address
// registries (RFC 6890 and its updates): every range that is not globally reachable has a scope other than
// 'public'. IPv6 forms that carry an IPv4 address (v4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16)
// are judged by the IPv4 address inside, so ::ffff:127.0.0.1 is loopback.
import { isIP } from 'node:net'

export interface IpAddress {
  version: 4 | 6
  value: bigint
}

/** An address range: `base` with its first `bits` bits significant. A single address has bits 32 or 128. */
export interface IpRange {
  version: 4 | 6
  base: bigint
  bits: number
}

/**
 * What an address reaches. Only 'public' is reachable on the Internet; 'private' covers RFC 1918, shared
 * (CGNAT), unique-local and site-local space; 'reserved' documentation, benchmarking, protocol-assignment and
 * unallocated space.
 */
export type AddressScope = 'public' | 'loopback' | 'private' | 'link-local' | 'multicast' | 'unspecified' | 'reserved'

/** An IPv4 or IPv6 address in text (IPv6 with or without brackets; a zone such as %eth0 is ignored), or null. */
export function parseIp(text: string): IpAddress | null {
  let t = text.trim()
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1)
  t = t.split('%')[0]!
  const kind = isIP(t)
  if (kind === 4) return { version: 4, value: parseV4(t) }
  if (kind === 6) return { version: 6, value: parseV6(t) }
  return null
}

function parseV4(t: string): bigint {
  return t.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n)
}

// node's isIP has accepted the text, so it is well formed: groups of hex, at most one "::", maybe a dotted tail
function parseV6(t: string): bigint {
  let text = t.toLowerCase()
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const v4 = parseV4(dotted[1]!)
    text = text.slice(0, -dotted[1]!.length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null]
  const groups = (s: string | undefined) => (s ? s.split(':') : [])
  const first = groups(head)
  const last = tail === null ? [] : groups(tail)
  const zeros = tail === null ? [] : Array<string>(8 - first.length - last.length).fill('0')
  return [...first, ...zeros, ...last].reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n)
}

export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.')
  const groups: string[] = []
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip.value >> s) & 0xffffn).toString(16))
  // the longest run of two or more zero groups becomes "::"
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j === i ? i + 1 : j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`, `::1`, `[::1]`); null when it is none of these. */
export function parseRange(text: string): IpRange | null {
  const slash = text.lastIndexOf('/')
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash))
  if (!ip) return null
  const max = ip.version === 4 ? 32 : 128
  const bits = slash < 0 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) return null
  return { version: ip.version, base: ip.value & mask(ip.version, bits), bits }
}

function mask(version: 4 | 6, bits: number): bigint {
  const width = BigInt(version === 4 ? 32 : 128)
  return ((1n << BigInt(bits)) - 1n) << (width - BigInt(bits))
}

/** Whether `ip` lies in `range`; a v4-mapped IPv6 address is compared as the IPv4 address it carries. */
export function inRange(ip: IpAddress, range: IpRange): boolean {
  const a = unmapped(ip)
  const r = range.version === 6 && range.bits >= 96 && (range.base >> 32n) === 0xffffn ? { version: 4 as const, base: range.base & 0xffffffffn, bits: range.bits - 96 } : range
  return a.version === r.version && (a.value & mask(a.version, r.bits)) === r.base
}

/** ::ffff:a.b.c.d as a.b.c.d; any other address as it is. */
export function unmapped(ip: IpAddress): IpAddress {
  if (ip.version === 6 && ip.value >> 32n === 0xffffn) return { version: 4, value: ip.value & 0xffffffffn }
  return ip
}

const r = (text: string): IpRange => parseRange(text)!

const V4_SPECIAL: [IpRange, AddressScope][] = [
  [r('0.0.0.0/8'), 'unspecified'],
  [r('10.0.0.0/8'), 'private'],
  [r('100.64.0.0/10'), 'private'],
  [r('127.0.0.0/8'), 'loopback'],
  [r('169.254.0.0/16'), 'link-local'],
  [r('172.16.0.0/12'), 'private'],
  [r('192.0.0.0/24'), 'reserved'],
  [r('192.0.2.0/24'), 'reserved'],
  [r('192.88.99.0/24'), 'reserved'],
  [r('192.168.0.0/16'), 'private'],
  [r('198.18.0.0/15'), 'reserved'],
  [r('198.51.100.0/24'), 'reserved'],
  [r('203.0.113.0/24'), 'reserved'],
  [r('224.0.0.0/4'), 'multicast'],
  [r('240.0.0.0/4'), 'reserved'],
]

const V6_SPECIAL: [IpRange, AddressScope][] = [
  [r('::/128'), 'unspecified'],
  [r('::1/128'), 'loopback'],
  [r('::/96'), 'reserved'], // IPv4-compatible, deprecated
  [r('64:ff9b:1::/48'), 'private'],
  [r('100::/64'), 'reserved'],
  [r('2001::/23'), 'reserved'], // protocol assignments, Teredo among them
  [r('2001:db8::/32'), 'reserved'],
  [r('3fff::/20'), 'reserved'],
  [r('5f00::/16'), 'reserved'],
  [r('fc00::/7'), 'private'],
  [r('fe80::/10'), 'link-local'],
  [r('fec0::/10'), 'private'],
  [r('ff00::/8'), 'multicast'],
]
const GLOBAL_UNICAST = r('2000::/3')
const NAT64 = r('64:ff9b::/96')
const SIX_TO_FOUR = r('2002::/16')

/** What `ip` reaches (see AddressScope). */
export function addressScope(ip: IpAddress): AddressScope {
  const a = unmapped(ip)
  if (a.version === 4) return V4_SPECIAL.find(([range]) => inRange(a, range))?.[1] ?? 'public'
  // translation prefixes reach the IPv4 address they carry
  if (inRange(a, NAT64)) return addressScope({ version: 4, value: a.value & 0xffffffffn })
  if (inRange(a, SIX_TO_FOUR)) return addressScope({ version: 4, value: (a.value >> 80n) & 0xffffffffn })
  const special = V6_SPECIAL.find(([range]) => inRange(a, range))?.[1]
  if (special) return special
  return inRange(a, GLOBAL_UNICAST) ? 'public' : 'reserved'
}

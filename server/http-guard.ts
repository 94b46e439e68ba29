// Who may call the server: the Host allow-list (against DNS rebinding), the Origin check (against web pages
// posting to a local server), and bearer keys. With no API key, hearth's answer to "is this caller allowed"
// is "anything on this machine that is not a web page"; these checks are what make that true.
//
// - Host: a browser sends the name it resolved. A rebinding page on attacker.example that resolves to
//   127.0.0.1 still sends `Host: attacker.example`, so only names that mean this machine are served. An IP
//   address cannot be rebound (a page on http://203.0.113.5 stays there), so addresses are always served: that
//   keeps port-forwarded and NATed setups working, where the client's address is not one of this machine's.
// - Origin: browsers send it on every cross-site POST (text/plain ones too, which need no CORS preflight) and on
//   cross-origin fetches; curl and the SDKs send none. A present Origin must be the server's own or be allowed
//   by --cors.
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { HearthError } from '../lib/errors.js'

const LOOPBACK_NAMES = ['localhost']
const SEEN_MAX = 256

/** The host part of a Host header or an --allowed-hosts entry: lower-case, no port, IPv6 in brackets. */
export function hostOnly(value: string): string {
  let v = value.trim().toLowerCase()
  if (v.startsWith('[')) {
    const close = v.indexOf(']')
    return close > 0 ? v.slice(0, close + 1) : v
  }
  if (isIP(v) === 6) return `[${v}]`
  const colon = v.indexOf(':')
  if (colon >= 0) v = v.slice(0, colon)
  // the fully qualified form of a name ("localhost.") is the same name
  return v.endsWith('.') ? v.slice(0, -1) : v
}

export function isLoopbackHost(host: string): boolean {
  const h = hostOnly(host)
  return h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/** An IPv4 address or a bracketed IPv6 one, as hostOnly() leaves them. */
function isAddress(host: string): boolean {
  return isIP(host) === 4 || (host.startsWith('[') && isIP(host.slice(1, -1).split('%')[0]!) === 6)
}

function machineNames(): string[] {
  const name = hostname().toLowerCase()
  const short = name.split('.')[0]!
  return [name, short, `${short}.local`]
}

/**
 * The Host allow-list: any IP address (127.0.0.1, [::1], an interface's or a forwarded one), `localhost` and
 * the bound name; bound to a non-loopback address, also the machine's host names. `extra` (--allowed-hosts)
 * adds names, `.example.com` for a domain and its subdomains, or `*` for any Host (the check off).
 */
export class HostGuard {
  readonly #any: boolean
  readonly #fixed = new Set<string>()
  readonly #suffixes: string[] = []
  readonly #seen = new Map<string, boolean>()

  constructor(bindHost: string, extra: string[]) {
    this.#any = extra.includes('*')
    for (const n of LOOPBACK_NAMES) this.#fixed.add(n)
    this.#fixed.add(hostOnly(bindHost))
    if (!isLoopbackHost(bindHost)) for (const n of machineNames()) this.#fixed.add(n)
    for (const e of extra) {
      if (e.startsWith('.')) this.#suffixes.push(e.toLowerCase())
      else this.#fixed.add(hostOnly(e))
    }
  }

  allows(hostHeader: string | undefined): boolean {
    if (this.#any) return true
    if (hostHeader === undefined) return false
    let ok = this.#seen.get(hostHeader)
    if (ok === undefined) {
      const h = hostOnly(hostHeader)
      ok = this.#fixed.has(h) || isAddress(h) || this.#suffixes.some((s) => h.endsWith(s) || h === s.slice(1))
      // clients use a few Host values, each on every request: the answer is remembered (boundedly: the
      // values are the client's to choose)
      if (this.#seen.size >= SEEN_MAX) this.#seen.clear()
      this.#seen.set(hostHeader, ok)
    }
    return ok
  }
}

/**
 * Whether a request's Origin may call: absent (not a browser, or a same-origin GET), the server's own origin
 * (http or https with the Host the browser used), or one listed in `cors` (`*` for any).
 */
export function originAllowed(cors: string[], origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true
  if (cors.includes('*') || cors.includes(origin)) return true
  if (host === undefined) return false
  const o = origin.toLowerCase()
  const h = host.toLowerCase()
  return o === `http://${h}` || o === `https://${h}`
}

/** The refusal for a request that fails the Host or Origin check, or null. */
export function browserRefusal(hosts: HostGuard, cors: string[], host: string | undefined, origin: string | undefined): HearthError | null {
  if (!hosts.allows(host)) {
    return new HearthError(
      'host_not_allowed',
      `the Host ${JSON.stringify(host ?? '')} is not one of this server's names; to serve it, add it with --allowed-hosts (HEARTH_ALLOWED_HOSTS)`,
    )
  }
  if (!originAllowed(cors, origin, host)) {
    return new HearthError(
      'origin_not_allowed',
      `requests from the web page origin ${JSON.stringify(origin)} are refused; to allow browsers on it, start hearth with --cors ${origin} (HEARTH_CORS)`,
    )
  }
  return null
}

/** `Authorization: Bearer <key>`, compared in constant time. */
export function bearerMatches(key: string, authorization: string | undefined): boolean {
  if (authorization === undefined) return false
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(`Bearer ${key}`), digest(authorization))
}

// The one policy for every connection hearth opens to a URL from a request (remote MCP servers; remote media
// later): which hosts may be reached, and how much time and data a fetch may take.
//
// - Resolve, check, then connect to the checked address: the socket is opened to the address that was judged
//   (node's `lookup` is replaced, so there is no second DNS lookup a rebinding name could answer differently).
// - Every redirect hop is resolved and checked again; Authorization and Cookie do not follow a hop to another
//   origin.
// - Without an allow-list only public addresses are reached: loopback, private (RFC 1918, CGNAT, unique-local),
//   link-local, reserved and documentation space are refused, in IPv4 and IPv6 alike, including IPv6 forms that
//   carry an IPv4 address (::ffff:127.0.0.1). Unspecified and multicast addresses are never connected to.
// - An allow-list (--fetch-allow) names what may be reached, and then only that: host names (`mcp.example.com`),
//   domains with their subdomains (`.example.com`), addresses and ranges (`127.0.0.1`, `10.0.0.0/8`, `[::1]`),
//   and `*` for any public address. A listed name or address may be private; that is how a local server is
//   allowed (`--fetch-allow 127.0.0.1`).
// - Caps: the response head must arrive within `timeoutMs` of the fetch's start (all hops together); a body
//   larger than `maxBytes` is an error (its stream fails, or the fetch when Content-Length says so).
//
// `fetch` has the shape of the global fetch for the requests hearth makes (a URL, method, headers, a body that
// is a string or bytes, a signal, redirect 'follow' | 'manual' | 'error'); its Response streams the body, so it
// serves event streams (MCP's SSE) as well as whole downloads (`fetchBytes`). Failures are HearthErrors:
// fetch_not_allowed for a refused URL or hop, fetch_failed for everything else (the message says which cap).
import { lookup as dnsLookup } from 'node:dns/promises'
import * as http from 'node:http'
import * as https from 'node:https'
import type { LookupFunction } from 'node:net'
import { HearthError } from './errors.js'
import { addressScope, formatIp, inRange, parseIp, parseRange, type IpAddress, type IpRange } from './ip-ranges.js'

export interface OutboundPolicyOptions {
  /** --fetch-allow entries (see the header); empty: any public address and nothing else */
  allow?: readonly string[]
  /** time from the start of a fetch to its response head, every redirect hop included; default 10 s */
  timeoutMs?: number
  /** largest response body in bytes; default 16 MiB */
  maxBytes?: number
  /** redirects followed before the fetch fails; default 5 */
  maxRedirects?: number
  /** name resolution (tests); default the system resolver (getaddrinfo, as node and curl use) */
  resolve?: (host: string) => Promise<string[]>
}

/** The caps of one fetcher; `OutboundPolicy.fetcher` makes one with other caps over the same allow-list. */
export interface FetchCaps {
  timeoutMs: number
  maxBytes: number
}

/** The request options `fetch` honours; other RequestInit fields are ignored. */
export interface OutboundInit {
  method?: string
  headers?: Headers | Record<string, string> | [string, string][]
  body?: string | Uint8Array | ArrayBuffer | URLSearchParams | null
  signal?: AbortSignal | null
  redirect?: 'follow' | 'manual' | 'error'
}

export type OutboundFetch = (url: string | URL, init?: OutboundInit) => Promise<Response>

const REDIRECTS = new Set([301, 302, 303, 307, 308])
// hop-by-hop or framing headers the caller may not set; node writes them
const FORBIDDEN_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect'])
const CREDENTIALS = ['authorization', 'cookie', 'proxy-authorization']

export class OutboundPolicy {
  readonly #anyPublic: boolean
  readonly #names = new Set<string>()
  readonly #suffixes: string[] = []
  readonly #ranges: IpRange[] = []
  readonly #restricted: boolean
  readonly #caps: FetchCaps
  readonly #maxRedirects: number
  readonly #resolve: (host: string) => Promise<string[]>
  // own pools: a pooled socket was opened by this policy to a checked address, never by other code
  readonly #agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }

  /** Throws an Error naming the entry when an allow-list entry is none of the accepted forms. */
  constructor(options: OutboundPolicyOptions = {}) {
    const allow = options.allow ?? []
    this.#restricted = allow.length > 0
    this.#anyPublic = allow.includes('*')
    for (const raw of allow) {
      const entry = raw.trim().toLowerCase()
      if (entry === '*') continue
      const range = parseRange(entry)
      if (range) this.#ranges.push(range)
      else if (/^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(entry)) {
        const name = entry.replace(/\.$/, '')
        if (name.startsWith('.')) this.#suffixes.push(name)
        else this.#names.add(name)
      } else throw new Error(`hearth: --fetch-allow entry ${JSON.stringify(raw)} is not a host name, .domain, address, address/bits or *`)
    }
    this.#caps = { timeoutMs: options.timeoutMs ?? 10_000, maxBytes: options.maxBytes ?? 16 * 1024 * 1024 }
    this.#maxRedirects = options.maxRedirects ?? 5
    this.#resolve = options.resolve ?? (async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address))
  }

  get caps(): Readonly<FetchCaps> {
    return this.#caps
  }

  /** fetch under this policy's caps */
  readonly fetch: OutboundFetch = (url, init) => this.#fetch(url, init ?? {}, this.#caps)

  /** A fetch with other caps (e.g. a longer head time for a tool call that answers when done), same allow-list. */
  fetcher(caps: Partial<FetchCaps>): OutboundFetch {
    const c = { ...this.#caps, ...caps }
    return (url, init) => this.#fetch(url, init ?? {}, c)
  }

  /**
   * The whole body of a GET (or `init.method`), which must answer 2xx; here the time cap covers the body too.
   * For downloads such as remote images.
   */
  async fetchBytes(url: string | URL, init: Omit<OutboundInit, 'redirect'> = {}): Promise<{ bytes: Buffer; contentType: string | null; url: string }> {
    const timeout = AbortSignal.timeout(this.#caps.timeoutMs)
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout
    const where = String(url)
    try {
      const res = await this.#fetch(url, { ...init, signal, redirect: 'follow' }, this.#caps)
      if (res.status < 200 || res.status > 299) {
        await res.body?.cancel()
        throw new HearthError('fetch_failed', `${redact(where)} answered HTTP ${res.status}`)
      }
      const bytes = Buffer.from(await res.arrayBuffer())
      return { bytes, contentType: res.headers.get('content-type'), url: where }
    } catch (err) {
      if (timeout.aborted && !(err instanceof HearthError)) throw timedOut(where, this.#caps.timeoutMs)
      throw err
    }
  }

  /**
   * Resolves `url`'s host and returns the address a connection may be opened to: the first of its addresses
   * this policy allows. Throws fetch_not_allowed (scheme, host or address refused) or fetch_failed (no such name).
   */
  async check(url: URL): Promise<IpAddress> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new HearthError('fetch_not_allowed', `${redact(url.href)}: only http and https URLs are fetched`)
    }
    const host = url.hostname.toLowerCase().replace(/\.$/, '')
    const literal = parseIp(host)
    let addresses: IpAddress[]
    if (literal) addresses = [literal]
    else {
      if (this.#restricted && !this.#anyPublic && this.#ranges.length === 0 && !this.#nameListed(host)) {
        throw new HearthError('fetch_not_allowed', `${host} is not in --fetch-allow, so it is not fetched`)
      }
      let found: string[]
      try {
        found = await this.#resolve(host)
      } catch (err) {
        throw new HearthError('fetch_failed', `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      addresses = found.map((a) => parseIp(a)).filter((a): a is IpAddress => a !== null)
      if (addresses.length === 0) throw new HearthError('fetch_failed', `${host} has no address`)
    }
    let refusal = ''
    for (const a of addresses) {
      const why = this.#refusal(host, a)
      if (why === null) return a
      refusal ||= why
    }
    throw new HearthError('fetch_not_allowed', refusal)
  }

  /** Closes the pooled keep-alive connections. Fetches made later open new ones. */
  close(): void {
    this.#agents.http.destroy()
    this.#agents.https.destroy()
  }

  #nameListed(host: string): boolean {
    return this.#names.has(host) || this.#suffixes.some((s) => host.endsWith(s) || host === s.slice(1))
  }

  /** Why `address` (of `host`) may not be connected to, or null when it may. */
  #refusal(host: string, address: IpAddress): string | null {
    const scope = addressScope(address)
    const text = formatIp(address)
    const what = host === text || host === `[${text}]` ? text : `${host} (${text})`
    if (scope === 'unspecified' || scope === 'multicast') return `${what} is a${scope === 'unspecified' ? 'n' : ''} ${scope} address, never fetched`
    if (this.#nameListed(host) || this.#ranges.some((r) => inRange(address, r))) return null
    if (scope === 'public' && (!this.#restricted || this.#anyPublic)) return null
    if (scope !== 'public') return `${what} is a ${scope} address; it is fetched only when --fetch-allow lists it`
    return `${what} is not in --fetch-allow, so it is not fetched`
  }

  async #fetch(input: string | URL, init: OutboundInit, caps: FetchCaps): Promise<Response> {
    let url = new URL(String(input))
    let method = (init.method ?? 'GET').toUpperCase()
    const headers = outgoingHeaders(init.headers)
    let body = bodyBytes(init.body)
    if (body && init.body instanceof URLSearchParams && !headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8'
    const deadline = performance.now() + caps.timeoutMs
    const signal = init.signal ?? undefined
    for (let hop = 0; ; hop++) {
      signal?.throwIfAborted()
      const address = await this.#checkBefore(url, deadline, caps)
      const res = await this.#request(url, address, method, headers, body, signal, deadline, caps)
      const location = REDIRECTS.has(res.status) ? res.headers.get('location') : null
      if (location === null || init.redirect === 'manual') return res
      await res.body?.cancel()
      if (init.redirect === 'error') throw new HearthError('fetch_failed', `${redact(url.href)} redirects, and this fetch follows no redirect`)
      if (hop >= this.#maxRedirects) throw new HearthError('fetch_failed', `${redact(url.href)}: more than ${this.#maxRedirects} redirects`)
      let next: URL
      try {
        next = new URL(location, url)
      } catch {
        throw new HearthError('fetch_failed', `${redact(url.href)} redirects to an invalid URL`)
      }
      // as fetch does: 303, and 301/302 after a POST, continue as a GET without the body
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        if (method !== 'HEAD') method = 'GET'
        body = null
        delete headers['content-type']
      }
      if (next.origin !== url.origin) for (const h of CREDENTIALS) delete headers[h]
      url = next
    }
  }

  // the name check is bounded by the same deadline as the connection
  async #checkBefore(url: URL, deadline: number, caps: FetchCaps): Promise<IpAddress> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut(url.href, caps.timeoutMs)), Math.max(0, deadline - performance.now()))
    })
    try {
      return await Promise.race([this.check(url), late])
    } finally {
      clearTimeout(timer)
    }
  }

  #request(
    url: URL,
    address: IpAddress,
    method: string,
    headers: Record<string, string>,
    body: Buffer | null,
    signal: AbortSignal | undefined,
    deadline: number,
    caps: FetchCaps,
  ): Promise<Response> {
    const secure = url.protocol === 'https:'
    const family = address.version
    const ip = formatIp(address)
    // connect to the checked address whatever the name resolves to now (node asks with all: true when it
    // tries several address families)
    const lookup = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      if (opts.all) cb(null, [{ address: ip, family }])
      else cb(null, ip, family)
    }) as unknown as LookupFunction
    return new Promise<Response>((resolve, reject) => {
      const options: http.RequestOptions = { method, headers, agent: secure ? this.#agents.https : this.#agents.http, lookup, family }
      const req = (secure ? https : http).request(url, options)
      let settled = false
      const fail = (err: Error) => {
        if (settled) return
        settled = true
        cleanup()
        req.destroy()
        reject(err)
      }
      const onAbort = () => fail(signal?.reason instanceof Error ? signal.reason : new HearthError('request_cancelled', 'the fetch was cancelled'))
      const timer = setTimeout(() => fail(timedOut(url.href, caps.timeoutMs)), Math.max(0, deadline - performance.now()))
      const cleanup = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (signal?.aborted) onAbort() // while the name was being checked
      req.on('error', (err) => fail(new HearthError('fetch_failed', `${redact(url.href)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)))
      req.on('response', (res) => {
        if (settled) {
          res.destroy()
          return
        }
        settled = true
        cleanup()
        const declared = Number(res.headers['content-length'] ?? NaN)
        if (declared > caps.maxBytes) {
          res.destroy()
          reject(tooLarge(url.href, caps.maxBytes))
          return
        }
        resolve(webResponse(res, method, url.href, caps.maxBytes, signal))
      })
      req.end(body ?? undefined)
    })
  }
}

function outgoingHeaders(init: OutboundInit['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  new Headers(init).forEach((value, name) => {
    if (!FORBIDDEN_HEADERS.has(name) && !name.startsWith('proxy-')) out[name] = value
  })
  // node does not decompress: ask for the body as it is
  out['accept-encoding'] ??= 'identity'
  return out
}

function bodyBytes(body: OutboundInit['body']): Buffer | null {
  if (body === undefined || body === null) return null
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8')
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  throw new TypeError('an outbound fetch body must be a string, bytes or URLSearchParams')
}

/** The node response as a web Response whose body stream fails past `maxBytes` and ends with `signal`. */
function webResponse(res: http.IncomingMessage, method: string, href: string, maxBytes: number, signal: AbortSignal | undefined): Response {
  const headers = new Headers()
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!)
  const status = res.statusCode ?? 502
  const init = { status, statusText: res.statusMessage ?? '', headers }
  if (method === 'HEAD' || status === 204 || status === 205 || status === 304) {
    res.resume()
    return new Response(null, init)
  }
  let bytes = 0
  let done = false
  const onAbort = () => res.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
  signal?.addEventListener('abort', onAbort, { once: true })
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const finish = (err: Error | null) => {
        if (done) return
        done = true
        signal?.removeEventListener('abort', onAbort)
        if (err) controller.error(err)
        else controller.close()
      }
      res.on('data', (chunk: Buffer) => {
        if (done) return
        bytes += chunk.byteLength
        if (bytes > maxBytes) {
          finish(tooLarge(href, maxBytes))
          res.destroy()
          return
        }
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        if ((controller.desiredSize ?? 1) <= 0) res.pause()
      })
      res.on('end', () => finish(null))
      res.on('error', (err) => finish(err instanceof HearthError ? err : new HearthError('fetch_failed', `${redact(href)}: ${err.message}`)))
      res.on('close', () => finish(res.complete ? null : new HearthError('fetch_failed', `${redact(href)}: the connection closed before the body ended`)))
    },
    pull() {
      res.resume()
    },
    cancel() {
      done = true
      signal?.removeEventListener('abort', onAbort)
      res.destroy()
    },
  })
  return new Response(stream, init)
}

function timedOut(href: string, ms: number): HearthError {
  return new HearthError('fetch_failed', `${redact(href)} did not answer within ${ms / 1000} s`)
}

function tooLarge(href: string, max: number): HearthError {
  return new HearthError('fetch_failed', `${redact(href)} answered more than ${max} bytes`)
}

/** A URL without its user, password and query (they may hold secrets), for error messages. */
export function redact(href: string): string {
  try {
    const u = new URL(href)
    u.username = ''
    u.password = ''
    u.search = ''
    u.hash = ''
    return u.href
  } catch {
    return '(an invalid URL)'
  }
}

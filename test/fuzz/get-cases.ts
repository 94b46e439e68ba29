// Requests for the GET/DELETE endpoints: ids that exist, were deleted or never were (empty, huge, escaped,
// unicode, traversal), altered paths and query strings, other methods, odd headers, and bodies on a GET.
import { ENDPOINT_ROUTES, type EndpointName, type FuzzContext } from './endpoints.js'
import type { FuzzCase } from './fuzz-case.js'
import type { Rng } from './rng.js'

type GetCase = Omit<FuzzCase, 'id'>

const ODD_IDS = [
  '', '%20', '%00', '%2F', '%2e%2e', '..', '.', '%E0%A4%A', '%ZZ', '%', '%%', '%C0%AF', '%ED%A0%80', '%F0%9F%98%80',
  'resp_nope', 'resp_', 'null', 'undefined', '__proto__', 'constructor', 'toString', '0', '-1', 'a'.repeat(5000), 'a'.repeat(60_000),
  encodeURIComponent('日本語'), encodeURIComponent('\u0000'), "'%20OR%201=1", '%3Cscript%3E', 'x;y', 'x,y', '~', '*',
]

function idFor(rng: Rng, ctx: FuzzContext, e: EndpointName): { id: string; live: boolean } {
  if (e === 'model') {
    const names = [ctx.modelId, `${ctx.modelId}.gguf`, ctx.modelId.toUpperCase(), `${ctx.modelId} `]
    const id = rng.chance(0.4) ? encodeURIComponent(rng.pick(names)) : rng.pick(ODD_IDS)
    return { id, live: id === ctx.modelId || id === encodeURIComponent(`${ctx.modelId}.gguf`) }
  }
  if (ctx.responseIds.length && rng.chance(0.4)) return { id: rng.pick(ctx.responseIds), live: true }
  return { id: rng.pick(ODD_IDS), live: false }
}

const EXTRA_HEADERS: [string, () => Record<string, string>][] = [
  ['accept text/event-stream', () => ({ accept: 'text/event-stream' })],
  ['accept nothing JSON', () => ({ accept: 'image/png' })],
  ['a bearer token nobody asked for', () => ({ authorization: 'Bearer x' })],
  ['a malformed authorization', () => ({ authorization: 'Basic \u00ff' })],
  ['an 8 kB header', () => ({ 'x-big': 'a'.repeat(8192) })],
  ['a 60 kB header', () => ({ 'x-big': 'a'.repeat(60_000) })],
  ['40 headers', () => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, 'v']))],
  ['an origin (no CORS configured)', () => ({ origin: 'http://evil.test' })],
  ['connection: upgrade to websocket', () => ({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' })],
  ['if-none-match and range', () => ({ 'if-none-match': '*', range: 'bytes=0-1' })],
]

/** One request for a GET/DELETE endpoint. `control` asks for the plain, valid form. */
export function getCase(rng: Rng, ctx: FuzzContext, e: EndpointName, control: boolean): GetCase {
  const route = ENDPOINT_ROUTES[e]
  const parametrised = route.path.includes('{id}')
  const pick = idFor(rng, ctx, e)
  const path = route.path.replace('{id}', pick.id)
  const base: GetCase = { endpoint: e, method: route.method, path, contentType: null, headers: {}, body: null, kind: 'control', label: 'as is', touched: [] }
  const fitsId = parametrised ? (pick.live ? [200, 404] : [404]) : [200]
  if (control) return { ...base, label: parametrised ? `id ${pick.live ? 'stored' : 'unknown'} ${pick.id.slice(0, 40)}` : 'as is', expect: fitsId }
  return rng.weighted<() => GetCase>([
    [parametrised ? 5 : 0, () => ({ ...base, kind: 'path', label: `id ${pick.id.slice(0, 60)}${pick.id.length > 60 ? `... (${pick.id.length} chars)` : ''}`, expect: fitsId })],
    [3, () => {
      const [variant, what] = rng.pick<[string, string]>([
        [`${path}?${rng.pick(['a=1', 'stream=true', '%ZZ', 'x'.repeat(10_000), '&&&', 'a[]=1&a[]=2'])}`, 'a query string'],
        [`${path}/`, 'a trailing slash'],
        [`/${path}`, 'a double slash'],
        [path.toUpperCase(), 'upper case'],
        [`${path}/extra`, 'an extra segment'],
        [`${path}%2F..`, 'an escaped traversal'],
        [path.replace(/^\/v1/, '/v2'), 'another version'],
        [`${path}#frag`, 'a fragment'],
      ])
      // a query string leaves the route as it is; anything else may name no route
      return { ...base, kind: 'path', path: variant, label: what, expect: what === 'a query string' ? fitsId : [...new Set([...fitsId, 404])] }
    }],
    [2, () => {
      const method = rng.pick(['POST', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', ...(route.method === 'GET' && parametrised ? ['DELETE'] : ['GET'])].filter((m) => m !== route.method))
      // another method on the same path: 405, unless that method is routed too (GET and DELETE of a response)
      const routed = parametrised && e.startsWith('responses') && (method === 'GET' || method === 'DELETE')
      // an odd id can make the path match no route at all: 404 then
      // HEAD is answered as GET without the body
      const asGet = method === 'HEAD' && (route.method === 'GET' || (parametrised && e.startsWith('responses')))
      return { ...base, kind: 'method', method, label: `method ${method}`, expect: method === 'OPTIONS' ? [204] : routed || asGet ? fitsId : parametrised ? [405, 404] : [405] }
    }],
    [3, () => {
      const [what, headers] = rng.pick(EXTRA_HEADERS)
      // a foreign Origin is refused when no CORS origin is configured (a browser page must not read a local server)
      return { ...base, kind: 'header', headers: headers(), label: what, expect: what.startsWith('an origin') ? [403] : fitsId }
    }],
    [1, () => ({ ...base, kind: 'header', contentType: 'application/json', body: Buffer.from(rng.pick(['{"a":1}', '{', 'x'.repeat(100_000)])), label: 'a body on a GET', expect: fitsId })],
  ])()
}

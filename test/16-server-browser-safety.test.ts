// Browser safety with no API key: a web page may not use the server (Origin refused unless --cors allows it),
// DNS rebinding is refused by the Host allow-list (--allowed-hosts extends it), /metrics takes a key, and
// curl-style clients (no Origin, any Content-Type) keep working. Pure checks first, without the model.
import { hostname, networkInterfaces } from 'node:os'
import t, { type Test } from 'tap'
import { parseConfig } from '../server/cli.js'
import { bearerMatches, HostGuard, hostOnly, originAllowed } from '../server/http-guard.js'
import { rawExchange, startTestServer } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 2 })

t.test('host and origin rules (no model)', async (t) => {
  t.equal(hostOnly('LocalHost:1234'), 'localhost')
  t.equal(hostOnly('[::1]:80'), '[::1]')
  t.equal(hostOnly('::1'), '[::1]', 'a bare IPv6 address from --allowed-hosts')
  t.equal(hostOnly('localhost.'), 'localhost', 'the fully qualified form')

  const loop = new HostGuard('127.0.0.1', [])
  for (const h of ['localhost', 'localhost:1234', '127.0.0.1:9', '[::1]:1234']) t.ok(loop.allows(h), `loopback bind allows ${h}`)
  for (const h of ['attacker.example', 'attacker.example:1234', '127.0.0.1.nip.io', '127.1', hostname(), '', undefined]) t.notOk(loop.allows(h), `loopback bind refuses ${h}`)
  t.ok(loop.allows('203.0.113.5:8080'), 'any IP address: it cannot be rebound')

  const any = new HostGuard('0.0.0.0', [])
  t.ok(any.allows(`${hostname()}:1234`), 'a non-loopback bind allows the machine name')
  t.ok(any.allows(`${hostname().split('.')[0]}.local`), 'and its .local name')
  t.ok(any.allows('localhost:1234'), 'and localhost')
  const addresses = Object.values(networkInterfaces()).flatMap((l) => l ?? [])
  for (const a of addresses) t.ok(any.allows(a.family === 'IPv6' ? `[${a.address.split('%')[0]}]:80` : `${a.address}:80`), `and its address ${a.address}`)
  t.ok(any.allows('[2001:db8::1]'), 'and a forwarded address')
  t.notOk(any.allows('attacker.example'), 'but not other names')

  const extra = new HostGuard('127.0.0.1', ['myhost.test', '.corp.example', '::2'])
  t.ok(extra.allows('myhost.test:8080'))
  t.ok(extra.allows('corp.example'))
  t.ok(extra.allows('a.b.corp.example'))
  t.ok(extra.allows('[::2]'))
  t.notOk(extra.allows('evilcorp.example'), 'a suffix entry matches whole labels only')
  t.ok(new HostGuard('127.0.0.1', ['*']).allows('anything.example'), '* turns the check off')

  t.ok(originAllowed([], undefined, 'localhost:1'), 'no Origin: not a browser page')
  t.notOk(originAllowed([], 'https://evil.example', 'localhost:1'))
  t.notOk(originAllowed([], 'null', 'localhost:1'), 'the opaque origin of sandboxes and files')
  t.ok(originAllowed([], 'http://localhost:1', 'localhost:1'), 'same origin')
  t.ok(originAllowed([], 'https://localhost:1', 'localhost:1'), 'same origin behind a TLS proxy')
  t.notOk(originAllowed([], 'http://localhost:2', 'localhost:1'), 'another port is another origin')
  t.ok(originAllowed(['https://app.example'], 'https://app.example', 'localhost:1'))
  t.ok(originAllowed(['*'], 'https://evil.example', 'localhost:1'))

  t.ok(bearerMatches('k', 'Bearer k'))
  t.notOk(bearerMatches('k', 'Bearer kk'))
  t.notOk(bearerMatches('k', undefined))
})

t.test('flags and environment (no model)', async (t) => {
  const c = parseConfig(['--allowed-hosts', 'a.test, .b.test', '--metrics-key', 'm', '--body-timeout', '2.5', '--cors', 'https://x.example'], {})
  t.same(c.allowedHosts, ['a.test', '.b.test'])
  t.equal(c.metricsKey, 'm')
  t.equal(c.bodyTimeoutMs, 2500)
  t.same(c.cors, ['https://x.example'])
  const e = parseConfig([], { HEARTH_ALLOWED_HOSTS: '*', HEARTH_METRICS_KEY: 'n', HEARTH_BODY_TIMEOUT: '7' })
  t.same(e.allowedHosts, ['*'])
  t.equal(e.metricsKey, 'n')
  t.equal(e.bodyTimeoutMs, 7000)
  const d = parseConfig([], {})
  t.same(d.allowedHosts, [])
  t.equal(d.metricsKey, null)
  t.equal(d.bodyTimeoutMs, 30000, 'default body timeout')
  for (const bad of ['0', '-1', 'soon', '1e9']) t.throws(() => parseConfig(['--body-timeout', bad], {}), /body-timeout/, `--body-timeout ${bad}`)
  const { main } = await import('../server/cli.js')
  let help = ''
  const write = process.stdout.write
  process.stdout.write = ((s: string) => ((help += s), true)) as typeof process.stdout.write
  try {
    await main(['serve', '--help'])
  } finally {
    process.stdout.write = write
  }
  for (const flag of ['--allowed-hosts', 'HEARTH_ALLOWED_HOSTS', '--metrics-key', 'HEARTH_METRICS_KEY', '--body-timeout', 'HEARTH_BODY_TIMEOUT', '--cors', 'HEARTH_CORS']) {
    t.match(help, flag, `--help lists ${flag}`)
  }
})

function refused(t: Test, status: number, json: any, code: string, flag: string) {
  t.equal(status, 403, '403')
  t.equal(json?.error?.code, code, code)
  t.equal(json?.error?.type, 'invalid_request_error')
  t.match(json?.error?.message, flag, `the message names ${flag}`)
}

async function call(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${url}${path}`, init)
  const text = await r.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: r.status, json, headers: r.headers }
}

/** A request with a Host header of our choosing (fetch will not send one), over a raw socket. */
async function withHost(url: string, host: string, extra = ''): Promise<{ status: number; json: any }> {
  const { responses, conn } = await rawExchange(url, `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`)
  conn.destroy()
  const r = responses[0]!
  return { status: r.status, json: JSON.parse(r.body) }
}

t.test('default: no API key, no --cors', async (t) => {
  const { url, client } = await startTestServer(t)
  const port = new URL(url).port

  // what a page on another site can send without a preflight: a text/plain POST, with its Origin
  const page = await call(url, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'text/plain', origin: 'https://evil.example' }, body: chat })
  refused(t, page.status, page.json, 'origin_not_allowed', '--cors')
  t.notOk(page.headers.get('access-control-allow-origin'), 'no CORS header on the refusal')
  const read = await call(url, '/v1/models', { headers: { origin: 'https://evil.example' } })
  refused(t, read.status, read.json, 'origin_not_allowed', '--cors')
  const preflight = await call(url, '/v1/chat/completions', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.status, 403, 'a preflight from another site')
  const sandboxed = await call(url, '/v1/models', { headers: { origin: 'null' } })
  t.equal(sandboxed.status, 403, 'Origin: null')

  const same = await call(url, '/v1/models', { headers: { origin: `http://127.0.0.1:${port}` } })
  t.equal(same.status, 200, 'same origin')

  // curl -d '{...}' sends no Origin and a form Content-Type (or none at all over a raw socket)
  const form = await call(url, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: chat })
  t.equal(form.status, 200, "curl -d's form Content-Type")
  const { responses, conn } = await rawExchange(url, `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${chat.length}\r\n\r\n${chat}`)
  conn.destroy()
  t.equal(responses[0]?.status, 200, 'no Content-Type and no Origin')
  t.equal(JSON.parse(responses[0]!.body).usage.completion_tokens, 2)

  // DNS rebinding: the page's name resolves to 127.0.0.1, but its Host header still names the page
  const rebound = await withHost(url, `attacker.example:${port}`)
  refused(t, rebound.status, rebound.json, 'host_not_allowed', '--allowed-hosts')
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) t.equal((await withHost(url, host)).status, 200, `Host ${host}`)
  const health = await rawExchange(url, `GET /health HTTP/1.1\r\nHost: attacker.example\r\n\r\n`)
  health.conn.destroy()
  t.equal(health.responses[0]?.status, 403, '/health too: a rebinding page learns nothing')

  // with no keys, /metrics is open to local tools
  t.equal((await call(url, '/metrics')).status, 200)
  t.equal((await client.models.list()).data[0]?.id, MODEL, 'the SDK (no Origin) works')
})

t.test('--cors, --allowed-hosts and --metrics-key', async (t) => {
  const { url, client } = await startTestServer(t, ['--cors', 'https://app.example', '--allowed-hosts', 'myhost.test,.corp.example', '--metrics-key', 'scrape'])
  const port = new URL(url).port
  const ok = await call(url, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'text/plain', origin: 'https://app.example' }, body: chat })
  t.equal(ok.status, 200, 'an allowed origin')
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example')
  const preflight = await call(url, '/v1/chat/completions', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example')
  const other = await call(url, '/v1/models', { headers: { origin: 'https://other.example' } })
  refused(t, other.status, other.json, 'origin_not_allowed', '--cors')

  t.equal((await withHost(url, `myhost.test:${port}`)).status, 200, 'a listed host')
  t.equal((await withHost(url, 'build.corp.example')).status, 200, 'a listed domain')
  t.equal((await withHost(url, `localhost:${port}`)).status, 200, 'loopback names still')
  const rebound = await withHost(url, 'attacker.example')
  refused(t, rebound.status, rebound.json, 'host_not_allowed', '--allowed-hosts')

  const open = await call(url, '/metrics')
  t.equal(open.status, 401, '/metrics needs the metrics key')
  t.equal(open.json?.error?.code, 'invalid_api_key')
  t.match(open.json?.error?.message, '--metrics-key')
  t.equal((await call(url, '/metrics', { headers: { authorization: 'Bearer nope' } })).status, 401)
  const scraped = await call(url, '/metrics', { headers: { authorization: 'Bearer scrape' } })
  t.equal(scraped.status, 200)
  t.match(scraped.json, /hearth_requests_total/)
  t.equal((await call(url, '/health')).status, 200, '/health stays open')
  t.equal((await client.models.list()).data.length, 1, 'no API key: /v1 stays open')
})

t.test('environment variables; the API key guards /metrics without a metrics key', async (t) => {
  const { url, client } = await startTestServer(t, ['--api-key', 'sesame'], { HEARTH_CORS: '*', HEARTH_ALLOWED_HOSTS: '*' })
  t.equal((await withHost(url, 'attacker.example', 'Authorization: Bearer sesame\r\n')).status, 200, 'HEARTH_ALLOWED_HOSTS=* turns the Host check off')
  const any = await call(url, '/v1/models', { headers: { origin: 'https://any.example', authorization: 'Bearer sesame' } })
  t.equal(any.status, 200, 'HEARTH_CORS=* allows any origin')
  t.equal(any.headers.get('access-control-allow-origin'), '*')
  t.equal((await call(url, '/metrics')).status, 401, '/metrics takes the API key')
  t.equal((await call(url, '/metrics', { headers: { authorization: 'Bearer sesame' } })).status, 200)
  t.equal((await call(url, '/health')).status, 200)
  t.equal((await client.models.list()).data[0]?.id, MODEL)

  const keyed = await startTestServer(t, [], { HEARTH_METRICS_KEY: 'm' })
  t.equal((await call(keyed.url, '/metrics')).status, 401, 'HEARTH_METRICS_KEY')
  t.equal((await call(keyed.url, '/metrics', { headers: { authorization: 'Bearer m' } })).status, 200)
})

// The outbound fetch policy without a model: which addresses are what (IPv4, IPv6, IPv6 forms carrying IPv4),
// which a policy lets through, and real fetches against a local HTTP server: the checked address is the one
// connected to, every redirect hop is checked (a hop to an address not allowed is refused), credentials stay
// on their origin, and the time and size caps end a fetch. Every address used here is on this machine.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { HearthError } from '../lib/errors.js'
import { addressScope, formatIp, inRange, parseIp, parseRange } from '../lib/ip-ranges.js'
import { OutboundPolicy, redact } from '../lib/outbound-fetch.js'

t.test('address scopes', async (t) => {
  const cases: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['64:ff9b::a00:1', 'private'], // NAT64 of 10.0.0.1
    ['2002:a00:1::', 'private'], // 6to4 of 10.0.0.1
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['::ffff:169.254.1.1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['93.184.215.14', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['2606:4700::1111', 'public'],
    ['64:ff9b::808:808', 'public'],
  ]
  for (const [text, scope] of cases) t.equal(addressScope(parseIp(text)!), scope, `${text} is ${scope}`)
  t.equal(parseIp('example.com'), null)
  t.equal(parseIp('1.2.3'), null)
  t.equal(parseIp('::ffff:1.2.3.256'), null)
})

t.test('addresses and ranges in text', async (t) => {
  for (const [text, formatted] of [
    ['::1', '::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::', 'fe80::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['10.20.30.40', '10.20.30.40'],
  ]) {
    t.equal(formatIp(parseIp(text!)!), formatted, `${text} -> ${formatted}`)
  }
  const ten = parseRange('10.0.0.0/8')!
  t.ok(inRange(parseIp('10.9.9.9')!, ten))
  t.ok(inRange(parseIp('::ffff:10.9.9.9')!, ten), 'a v4-mapped address is in the IPv4 range')
  t.notOk(inRange(parseIp('11.0.0.1')!, ten))
  t.ok(inRange(parseIp('127.0.0.1')!, parseRange('::ffff:127.0.0.1')!), 'a v4-mapped single address matches its IPv4 form')
  t.ok(inRange(parseIp('fd00::5')!, parseRange('fd00::/8')!))
  t.same(parseRange('10.1.2.3/8'), { version: 4, base: 0x0a000000n, bits: 8 }, 'host bits are masked off')
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/x', '::/129', 'example.com', '1.2.3.4/-1']) t.equal(parseRange(bad), null, `${bad} is no range`)
})

/** `p` rejects with a HearthError of `code` whose message matches. */
async function refused(t: Test, p: Promise<unknown>, code: string, match: RegExp): Promise<void> {
  try {
    await p
  } catch (err) {
    t.ok(err instanceof HearthError, `a HearthError: ${String(err)}`)
    t.equal((err as HearthError).code, code)
    t.match((err as Error).message, match)
    return
  }
  t.fail(`expected ${code}`)
}

t.test('what a policy lets through (resolution faked, nothing connected)', async (t) => {
  const names: Record<string, string[]> = {
    'public.test': ['93.184.215.14'],
    'inside.test': ['10.0.0.7'],
    'both.test': ['10.0.0.7', '93.184.215.14'],
    'local.test': ['::1', '127.0.0.1'],
    'zero.test': ['0.0.0.0'],
  }
  let lookups = 0
  const resolve = async (host: string) => {
    lookups++
    const found = names[host]
    if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    return found
  }
  const check = (allow: string[], url: string) => new OutboundPolicy({ allow, resolve }).check(new URL(url))

  // no allow-list: public addresses only
  t.equal(formatIp(await check([], 'https://public.test/x')), '93.184.215.14')
  t.equal(formatIp(await check([], 'http://93.184.215.14/')), '93.184.215.14')
  await refused(t, check([], 'http://127.0.0.1:8080/mcp'), 'fetch_not_allowed', /127\.0\.0\.1 is a loopback address; it is fetched only when --fetch-allow lists it/)
  await refused(t, check([], 'http://[::1]/'), 'fetch_not_allowed', /loopback/)
  await refused(t, check([], 'http://[::ffff:127.0.0.1]/'), 'fetch_not_allowed', /loopback/)
  await refused(t, check([], 'http://169.254.169.254/latest/meta-data'), 'fetch_not_allowed', /link-local/)
  await refused(t, check([], 'http://inside.test/'), 'fetch_not_allowed', /inside\.test \(10\.0\.0\.7\) is a private address/)
  await refused(t, check([], 'http://[fd00::1]/'), 'fetch_not_allowed', /private/)
  await refused(t, check([], 'http://2130706433/'), 'fetch_not_allowed', /loopback/) // the URL parser makes it 127.0.0.1
  await refused(t, check([], 'http://0x7f.1/'), 'fetch_not_allowed', /loopback/)
  t.equal(formatIp(await check([], 'http://both.test/')), '93.184.215.14', 'a name with a private and a public address connects to the public one')
  await refused(t, check([], 'ftp://public.test/'), 'fetch_not_allowed', /only http and https/)
  await refused(t, check([], 'file:///etc/passwd'), 'fetch_not_allowed', /only http and https/)
  await refused(t, check([], 'http://nowhere.test/'), 'fetch_failed', /cannot resolve nowhere\.test: ENOTFOUND/)

  // an allow-list names what may be reached, and only that
  t.equal(formatIp(await check(['127.0.0.1'], 'http://127.0.0.1:9/')), '127.0.0.1')
  t.equal(formatIp(await check(['127.0.0.1'], 'http://local.test/')), '127.0.0.1', 'a name resolving to a listed address: that address')
  await refused(t, check(['127.0.0.1'], 'http://127.0.0.2/'), 'fetch_not_allowed', /127\.0\.0\.2 is a loopback address/)
  await refused(t, check(['127.0.0.1'], 'http://93.184.215.14/'), 'fetch_not_allowed', /93\.184\.215\.14 is not in --fetch-allow/)
  t.equal(formatIp(await check(['127.0.0.1'], 'http://[::ffff:127.0.0.1]/')), '::ffff:7f00:1', 'the v4-mapped form of a listed address')
  t.equal(formatIp(await check(['inside.test'], 'http://inside.test/')), '10.0.0.7', 'a listed name may be private')
  t.equal(formatIp(await check(['.test'], 'http://inside.test/')), '10.0.0.7', 'a listed domain covers its subdomains')
  t.equal(formatIp(await check(['10.0.0.0/8'], 'http://inside.test/')), '10.0.0.7', 'a listed range')
  t.equal(formatIp(await check(['[::1]'], 'http://local.test/')), '::1')
  t.equal(formatIp(await check(['*'], 'http://public.test/')), '93.184.215.14', '* is any public address')
  await refused(t, check(['*'], 'http://inside.test/'), 'fetch_not_allowed', /private/)
  t.equal(formatIp(await check(['*', '127.0.0.1'], 'http://127.0.0.1/')), '127.0.0.1')
  await refused(t, check(['zero.test'], 'http://zero.test/'), 'fetch_not_allowed', /unspecified address, never fetched/)
  await refused(t, check(['0.0.0.0/8'], 'http://0.0.0.0/'), 'fetch_not_allowed', /unspecified/)
  lookups = 0
  await refused(t, check(['mcp.example.com'], 'http://public.test/'), 'fetch_not_allowed', /public\.test is not in --fetch-allow/)
  t.equal(lookups, 0, 'a name outside a list of names is refused without a lookup')

  for (const bad of ['http://x', 'a b', '10.0.0.0/33', '']) t.throws(() => new OutboundPolicy({ allow: [bad] }), /--fetch-allow entry/, `${JSON.stringify(bad)} is refused`)
  t.equal(redact('https://user:secret@example.com/mcp?token=abc#f'), 'https://example.com/mcp')
})

interface Seen {
  url: string
  method: string
  headers: IncomingMessage['headers']
  body: string
}

async function localServer(t: Test, handler: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      seen.push({ url: req.url!, method: req.method!, headers: req.headers, body })
      handler(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, seen }
}

t.test('fetches from a local server', async (t) => {
  let release: () => void = () => undefined
  const released = new Promise<void>((resolve) => (release = resolve))
  const { port, seen } = await localServer(t, (req, res, body) => {
    const u = new URL(req.url!, 'http://x')
    switch (u.pathname) {
      case '/ok':
        res.setHeader('content-type', 'text/plain')
        res.end(`ok ${req.method} ${body}`)
        return
      case '/to-ok':
        res.writeHead(302, { location: '/ok' }).end()
        return
      case '/see-other':
        res.writeHead(303, { location: '/ok' }).end()
        return
      case '/to-name':
        res.writeHead(307, { location: `http://mcp.test:${port}/ok` }).end()
        return
      case '/to-other-loopback':
        res.writeHead(302, { location: `http://127.0.0.2:${port}/ok` }).end()
        return
      case '/to-mapped':
        res.writeHead(302, { location: `http://[::ffff:127.0.0.3]:${port}/ok` }).end()
        return
      case '/to-ftp':
        res.writeHead(302, { location: 'ftp://127.0.0.1/x' }).end()
        return
      case '/loop':
        res.writeHead(302, { location: '/loop' }).end()
        return
      case '/big':
        res.end('x'.repeat(2000))
        return
      case '/big-chunked':
        res.write('x'.repeat(600))
        res.end('y'.repeat(600))
        return
      case '/stream':
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: first\n\n')
        void released.then(() => res.end('data: second\n\n'))
        return
      case '/missing':
        res.writeHead(404).end('no')
        return
      case '/silent':
        return // never answers
      default:
        res.writeHead(500).end()
    }
  })
  const base = `http://127.0.0.1:${port}`
  let lookups = 0
  // mcp.test does not exist in DNS: a fetch that reaches the server connected to the address the policy chose
  const resolve = async (host: string) => {
    lookups++
    if (host === 'mcp.test') return ['127.0.0.1']
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
  }
  const policy = new OutboundPolicy({ allow: ['127.0.0.1', 'mcp.test'], resolve, maxBytes: 1024, timeoutMs: 30_000 })
  t.teardown(() => policy.close())

  t.test('off by default: a local address is refused before any connection', async (t) => {
    const strict = new OutboundPolicy()
    t.teardown(() => strict.close())
    const before = seen.length
    await refused(t, strict.fetch(`${base}/ok`), 'fetch_not_allowed', /loopback/)
    t.equal(seen.length, before, 'the server saw nothing')
  })

  t.test('a listed address: method, headers and body go through; forbidden headers do not', async (t) => {
    const r = await policy.fetch(`${base}/ok`, { method: 'POST', headers: { authorization: 'Bearer k', 'x-extra': 'e', host: 'evil.test' }, body: '{"a":1}' })
    t.equal(r.status, 200)
    t.equal(await r.text(), 'ok POST {"a":1}')
    t.equal(r.headers.get('content-type'), 'text/plain')
    const s = seen.at(-1)!
    t.equal(s.headers.authorization, 'Bearer k')
    t.equal(s.headers['x-extra'], 'e')
    t.equal(s.headers.host, `127.0.0.1:${port}`, 'the caller cannot set Host')
    t.equal(s.headers['content-length'], '7')
  })

  t.test('a listed name connects to the address it was checked at (no second lookup)', async (t) => {
    lookups = 0
    const r = await policy.fetch(`http://mcp.test:${port}/ok`)
    t.equal(await r.text(), 'ok GET ')
    t.equal(lookups, 1, 'one lookup, by the policy')
    t.equal(seen.at(-1)!.headers.host, `mcp.test:${port}`, 'the request still names the host')
  })

  t.test('redirects: followed when every hop is allowed, refused at a hop that is not', async (t) => {
    t.equal(await (await policy.fetch(`${base}/to-ok`)).text(), 'ok GET ')
    t.equal(await (await policy.fetch(`${base}/see-other`, { method: 'POST', body: 'gone' })).text(), 'ok GET ', '303 turns a POST into a GET without the body')
    const before = seen.length
    await refused(t, policy.fetch(`${base}/to-other-loopback`), 'fetch_not_allowed', /127\.0\.0\.2 is a loopback address/)
    await refused(t, policy.fetch(`${base}/to-mapped`), 'fetch_not_allowed', /127\.0\.0\.3\b|::ffff:7f00:3/)
    await refused(t, policy.fetch(`${base}/to-ftp`), 'fetch_not_allowed', /only http and https/)
    t.equal(seen.length, before + 3, 'only the redirecting hops reached a server')
    await refused(t, policy.fetch(`${base}/loop`), 'fetch_failed', /more than 5 redirects/)
    const manual = await policy.fetch(`${base}/to-other-loopback`, { redirect: 'manual' })
    t.equal(manual.status, 302, "redirect 'manual' returns the redirect itself")
    t.equal(manual.headers.get('location'), `http://127.0.0.2:${port}/ok`)
    await refused(t, policy.fetch(`${base}/to-ok`, { redirect: 'error' }), 'fetch_failed', /follows no redirect/)
  })

  t.test('credentials do not follow a redirect to another origin', async (t) => {
    const r = await policy.fetch(`${base}/to-name`, { headers: { authorization: 'Bearer secret', cookie: 'c=1', 'x-keep': 'k' } })
    t.equal(await r.text(), 'ok GET ')
    const [hop1, hop2] = seen.slice(-2)
    t.equal(hop1!.headers.authorization, 'Bearer secret')
    t.equal(hop2!.headers.host, `mcp.test:${port}`)
    t.equal(hop2!.headers.authorization, undefined)
    t.equal(hop2!.headers.cookie, undefined)
    t.equal(hop2!.headers['x-keep'], 'k')
  })

  t.test('the size cap', async (t) => {
    await refused(t, policy.fetch(`${base}/big`), 'fetch_failed', /more than 1024 bytes/)
    const r = await policy.fetch(`${base}/big-chunked`)
    t.equal(r.status, 200, 'without Content-Length the head arrives')
    await refused(t, r.text(), 'fetch_failed', /more than 1024 bytes/)
    await refused(t, policy.fetchBytes(`${base}/big`), 'fetch_failed', /more than 1024 bytes/)
  })

  t.test('the time cap, and cancelling', async (t) => {
    const quick = policy.fetcher({ timeoutMs: 300 })
    await refused(t, quick(`${base}/silent`), 'fetch_failed', /did not answer within 0\.3 s/)
    const controller = new AbortController()
    const pending = policy.fetch(`${base}/silent`, { signal: controller.signal })
    controller.abort(new Error('stop'))
    await t.rejects(pending, /stop/)
  })

  t.test('bodies stream: the first event is read before the server has ended', async (t) => {
    const r = await policy.fetch(`${base}/stream`)
    const reader = r.body!.getReader()
    const first = await reader.read()
    t.equal(Buffer.from(first.value!).toString(), 'data: first\n\n')
    release()
    let rest = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      rest += Buffer.from(value).toString()
    }
    t.equal(rest, 'data: second\n\n')
  })

  t.test('fetchBytes: the whole body of a 2xx answer', async (t) => {
    const got = await policy.fetchBytes(`${base}/ok`)
    t.equal(got.bytes.toString(), 'ok GET ')
    t.equal(got.contentType, 'text/plain')
    await refused(t, policy.fetchBytes(`${base}/missing`), 'fetch_failed', /answered HTTP 404/)
    await refused(t, policy.fetchBytes(`${base}/to-other-loopback`), 'fetch_not_allowed', /loopback/)
  })
})

// HTTP edge cases over raw sockets: HTTP/1.0, a missing Host, pipelining behind a POST, malformed and
// oversized heads, stalled bodies, HEAD, 100-continue, chunked uploads, and an SSE reader that stops reading.
// Every case gets a status (never a silent close) and the server goes on serving. node:http parses; what hearth
// adds (the refusals before routing, OpenAI-shaped bodies for node's own refusals, aborts of queued pipelined
// replies, the SSE writer's backpressure) also gets fast tests on a bare HTTP server without the model.
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { errorCodes, HearthError } from '../lib/errors.js'
import { createHttpServer, MAX_HEADERS } from '../server/http-server.js'
import { readBody, Reply, type SseWriter } from '../server/http.js'
import { RawConnection, rawExchange, startTestServer, type RawResponse } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const tick = () => new Promise((r) => setImmediate(r))

/**
 * A bare hearth HTTP server: every request that passes the wire checks reads its body and answers 200 with
 * what hearth read of it; `handler` replaces that for the SSE tests.
 */
async function bareServer(t: Test, handler?: (reply: Reply) => void, bodyTimeoutMs = 30_000) {
  const refused: HearthError[] = []
  const finished: Reply[] = []
  const server = createHttpServer({
    bodyTimeoutMs,
    idleTimeoutMs: 10_000,
    onRequest: (req, res, info, refusal) => {
      const reply = new Reply(req, res, info, [], (r) => finished.push(r))
      // as app.ts does
      if (refusal) reply.error(refusal, true)
      else if (handler) handler(reply)
      else {
        readBody(reply, 1000)
          .then((body) => reply.json(200, { method: info.method, url: info.url, query: info.query, host: info.host, body: body.toString() }))
          .catch((err: unknown) => reply.error(err))
      }
      return reply
    },
    onRefused: (err) => refused.push(err),
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, refused, finished }
}

t.test('what node:http and hearth refuse before routing (no model)', async (t) => {
  const { url, refused } = await bareServer(t, undefined, 400)
  const cases: [string, string, number, string][] = [
    ['two different Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 400, 'bad_request'],
    // RFC 9112 6.3 allows refusing these too, and llhttp does
    ['two identical Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400, 'bad_request'],
    ...['abc', '-1', '+5', '0x10', '', '5, 5', '99999999999999999999'].map((v): [string, string, number, string] => [
      `Content-Length ${JSON.stringify(v)}`, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${v}\r\n\r\nhello`, 400, 'bad_request',
    ]),
    ['Transfer-Encoding with Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad_request'],
    ['Transfer-Encoding gzip, chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501, 'method_not_implemented'],
    ['Transfer-Encoding gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nab', 400, 'bad_request'],
    ['Transfer-Encoding in 1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad_request'],
    ['a malformed chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'bad_request'],
    ['1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400, 'bad_request'],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, 'bad_request'],
    ['malformed Host', 'GET / HTTP/1.1\r\nHost: a b@c\r\n\r\n', 400, 'bad_request'],
    ['unknown method', 'FOO / HTTP/1.1\r\nHost: a\r\n\r\n', 501, 'method_not_implemented'],
    ['lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n', 501, 'method_not_implemented'],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 501, 'method_not_implemented'],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, 'http_version_not_supported'],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 505, 'http_version_not_supported'],
    ['target not a path', 'GET v1/models HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'bad_request'],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'bad_request'],
    ['folded header', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n', 400, 'bad_request'],
    ['control character in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n', 400, 'bad_request'],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n', 400, 'bad_request'],
    ['Expect other than 100-continue', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n', 417, 'expectation_failed'],
    [`${MAX_HEADERS + 1} header lines`, 'GET / HTTP/1.1\r\nHost: a\r\n' + 'X-A: b\r\n'.repeat(MAX_HEADERS) + '\r\n', 431, 'headers_too_large'],
    ['a head past 32 KiB', 'GET / HTTP/1.1\r\nHost: a\r\nX: ' + 'a'.repeat(40000) + '\r\n\r\n', 431, 'headers_too_large'],
    ['a head past 32 KiB, before its end arrives', 'GET / HTTP/1.1\r\nHost: a\r\nX: ' + 'a'.repeat(40000), 431, 'headers_too_large'],
    ['a body over the limit', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n', 413, 'request_too_large'],
    ['a chunked body over the limit', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n' + 'a'.repeat(1001) + '\r\n', 413, 'request_too_large'],
    ['a stalled body', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello', 408, 'request_timeout'],
    ['a stalled head', 'GET / HTTP/1.1\r\nHost: a', 408, 'request_timeout'],
  ]
  for (const [name, text, status, code] of cases) {
    const { conn } = await rawExchange(url, text)
    const [r] = await conn.untilClosed()
    t.equal(r?.status, status, `${name}: ${status}`)
    t.equal(r?.headers['connection'], 'close', `${name}: Connection: close`)
    t.equal(JSON.parse(r?.body ?? 'null')?.error?.code, code, `${name}: ${code}`)
  }
  t.ok(refused.length > 0 && refused.every((e) => e instanceof HearthError), 'refusals without a request are reported')

  const ok = async (text: string) => {
    const { responses, conn } = await rawExchange(url, text)
    conn.destroy()
    return { status: responses[0]?.status, json: JSON.parse(responses[0]?.body ?? 'null') }
  }
  const max = await ok('GET / HTTP/1.1\r\nHost: a\r\n' + 'X-A: b\r\n'.repeat(MAX_HEADERS - 1) + '\r\n')
  t.equal(max.status, 200, `${MAX_HEADERS} header lines are accepted`)
  t.match(await ok('GET http://localhost:9/v1/models?x=1 HTTP/1.1\r\nHost: other\r\n\r\n'), { status: 200, json: { url: '/v1/models', query: 'x=1', host: 'localhost:9' } }, 'absolute-form: its authority is the Host')
  t.match(await ok('GET /health HTTP/1.0\r\n\r\n'), { status: 200, json: { host: /^127\.0\.0\.1:\d+$/ } }, 'HTTP/1.0 without Host: the address it was sent to')
  const head = new RawConnection(url)
  head.write('HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n')
  await head.until((text) => text.includes('\r\n\r\n'))
  t.match(head.text, /^HTTP\/1\.1 200 OK\r\n/, 'HEAD is routed as GET')
  t.match(head.text, /\r\nContent-Length: [1-9]\d*\r\n/i, "with GET's Content-Length")
  head.write('GET /y HTTP/1.1\r\nHost: a\r\n\r\n')
  await head.until((text) => text.endsWith('}'))
  t.match(head.text, /\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*"url":"\/y"/, 'and no body: the next response follows its head')
  head.destroy()
  t.match(await ok('\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 200 }, 'an empty line before a request is skipped')
  t.match(await ok('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n'), { status: 200, json: { body: 'hello world' } }, 'a chunked body')

  // 100 Continue only when the body is wanted: a request refused first gets its refusal instead
  const expect = await rawExchange(url, 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n')
  const [refusedFirst] = await expect.conn.untilClosed()
  t.equal(refusedFirst?.status, 413, 'Expect: 100-continue with a body over the limit: 413, no 100 first')
  const cont = new RawConnection(url)
  cont.write('POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n')
  const [hundred] = await cont.responses(1)
  t.equal(hundred?.status, 100, 'a wanted body gets 100 Continue')
  cont.write('hello')
  const [, sent] = await cont.responses(2)
  t.match(JSON.parse(sent?.body ?? 'null'), { body: 'hello' }, 'and is read')
  cont.destroy()

  // a malformed request pipelined behind a valid one: the valid one is answered first, then the refusal
  const conn = new RawConnection(url)
  conn.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\nFOO / HTTP/1.1\r\nHost: a\r\n\r\n')
  const rs = await conn.untilClosed()
  t.same(rs.map((r) => r.status), [200, 501], 'in order')
  t.equal(JSON.parse(rs[0]!.body).url, '/first')

  for (const code of ['bad_request', 'request_timeout', 'expectation_failed', 'headers_too_large', 'method_not_implemented', 'http_version_not_supported'] as const) {
    t.ok(errorCodes[code], `${code} is registered`)
  }
})

/** Wraps `res.write` and `res.end` of a reply to count the calls made after `mark()`. */
function spy(reply: Reply) {
  const res = reply.res
  const calls: string[] = []
  const write = res.write.bind(res) as (chunk: string) => boolean
  const end = res.end.bind(res) as (chunk?: string) => typeof res
  res.write = ((chunk: string) => {
    calls.push('write')
    return write(chunk)
  }) as typeof res.write
  res.end = ((chunk?: string) => {
    calls.push('end')
    return end(chunk)
  }) as typeof res.end
  return calls
}

t.test('SSE writer and replies over a real socket (no model)', async (t) => {
  const frame = 'x'.repeat(1 << 20)
  interface Stream {
    reply: Reply
    sse: SseWriter
    calls: string[]
    aborts: number
  }
  const arrivals: Stream[] = []
  const { url, finished } = await bareServer(t, (reply) => {
    const c: Stream = { reply, sse: reply.sse(), calls: spy(reply), aborts: 0 }
    reply.onAbort(() => c.aborts++)
    arrivals.push(c)
  })
  const next = async () => {
    while (arrivals.length === 0) await tick()
    return arrivals.shift()!
  }
  /** Sends 1 MiB frames to a client that does not read until a write meets backpressure. */
  const block = async (c: Stream) => {
    for (let i = 0; i < 256 && !c.reply.res.writableNeedDrain; i++) {
      c.sse.send(frame)
      await tick()
    }
    t.ok(c.reply.res.writableNeedDrain, 'a write met backpressure')
  }
  const started = async (conn: RawConnection) => {
    conn.socket.pause()
    conn.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n')
    return next()
  }

  // blocked: later frames wait in memory; end() sends them and the end at once, in order
  const a = new RawConnection(url)
  const ca = await started(a)
  await block(ca)
  const writes = ca.calls.length
  ca.sse.send('after-1')
  ca.sse.send('after-2')
  await tick()
  t.equal(ca.calls.length, writes, 'nothing is written while blocked')
  ca.sse.end()
  t.ok(ca.reply.finished, 'end() finishes the reply while blocked')
  a.socket.resume()
  const [ra] = await a.responses(1)
  const framesA = ra!.body.split('\n\n').filter(Boolean)
  t.same(framesA.slice(-2), ['data: after-1', 'data: after-2'], 'every frame, in order')
  t.ok(framesA.slice(0, -2).every((f) => f === `data: ${frame}`))
  t.ok(ra!.chunked && ra!.raw.endsWith('0\r\n\r\n'), 'the stream is finished')
  a.destroy()

  // blocked, then drained: the waiting frames go out together, and the stream goes on
  const b = new RawConnection(url)
  const cb = await started(b)
  await block(cb)
  cb.sse.send('waited')
  b.socket.resume()
  await b.until((text) => text.includes('data: waited\n\n'))
  cb.sse.send('later')
  await b.until((text) => text.includes('data: later\n\n'))
  cb.sse.end()
  const [rb] = await b.responses(1)
  t.same(rb!.body.split('\n\n').filter(Boolean).slice(-2), ['data: waited', 'data: later'])
  t.equal(cb.aborts, 0, 'no abort for a stream that ended')
  b.destroy()

  // the client goes away while blocked: the reply aborts once, and nothing more is written
  const c = new RawConnection(url)
  const cc = await started(c)
  await block(cc)
  const before = cc.calls.length
  c.destroy()
  while (!cc.reply.aborted) await tick()
  cc.sse.send('too late')
  cc.sse.end()
  cc.reply.json(200, {})
  await tick()
  t.equal(cc.aborts, 1, 'onAbort ran once')
  t.equal(cc.calls.length, before, 'nothing written after the close')
  t.equal(finished.filter((r) => r === cc.reply).length, 1, 'the reply finished once')
  t.equal(cc.reply.status, 200, 'with the status it had started')

  // pipelined requests still queued behind an open one are aborted with it
  const d = new RawConnection(url)
  d.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n')
  const queued = [await next(), await next(), await next()]
  queued[0]!.sse.send('first')
  await d.until((text) => text.includes('data: first'))
  queued[2]!.sse.send('queued')
  queued[2]!.sse.end()
  d.destroy()
  while (!queued[1]!.reply.aborted) await tick()
  t.same(queued.map((q) => q.aborts), [1, 1, 0], 'the open ones, the queued one included, abort; the ended one does not')
})

function isError(t: Test, r: RawResponse | undefined, status: number, code: string) {
  t.equal(r?.status, status, `status ${status}`)
  t.equal(r?.headers['connection'], 'close', 'Connection: close')
  const json = JSON.parse(r?.body ?? 'null')
  t.equal(json?.error?.code, code, `code ${code}`)
  t.type(json?.error?.message, 'string')
  t.equal(json?.error?.type, 'invalid_request_error')
}

const completion = JSON.stringify({ model: MODEL, prompt: 'The', max_tokens: 3 })
const post = (path: string, body: string, extra = '', version = '1.1') =>
  `POST ${path} HTTP/${version}\r\n${version === '1.1' ? 'Host: localhost\r\n' : ''}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`

t.test('raw HTTP', async (t) => {
  // 16 slots: the slow-reader case below generates its 16 choices together, quickly
  const { url, client } = await startTestServer(t, ['--body-timeout', '1', '--parallel', '16'])
  const stillServes = async (t: Test) => {
    const models = await client.models.list()
    t.equal(models.data[0]?.id, MODEL, 'the server still serves')
  }

  t.test('HTTP/1.0 GET, with and without keep-alive', async (t) => {
    const once = await rawExchange(url, 'GET /health HTTP/1.0\r\n\r\n')
    await once.conn.closed
    const [r] = once.responses
    t.equal(r?.status, 200)
    t.same(JSON.parse(r!.body), { status: 'ok', model: MODEL })
    t.notOk(r!.chunked, 'no chunked coding')
    t.equal(r!.headers['content-length'], String(Buffer.byteLength(r!.body)))
    t.equal(r!.headers['connection'], 'close')

    const kept = new RawConnection(url)
    kept.write('GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    const [a] = await kept.responses(1)
    t.equal(a?.status, 200)
    t.equal(a?.headers['connection'], 'keep-alive', 'kept open when asked')
    t.notOk(kept.isClosed)
    kept.write('GET /v1/models HTTP/1.0\r\n\r\n')
    const all = await kept.untilClosed()
    t.equal(all.length, 2, 'a second request on the same connection')
    t.equal(all[1]?.status, 200)
    t.equal(all[1]?.headers['connection'], 'close', 'closed after a request without keep-alive')
    await stillServes(t)
  })

  t.test('HTTP/1.0 POST, plain and streamed', async (t) => {
    const plain = await rawExchange(url, post('/v1/completions', completion, '', '1.0'))
    await plain.conn.closed
    t.equal(plain.responses[0]?.status, 200)
    t.equal(JSON.parse(plain.responses[0]!.body).usage.completion_tokens, 3)

    const body = JSON.stringify({ model: MODEL, prompt: 'The', max_tokens: 4, stream: true })
    const conn = new RawConnection(url)
    conn.write(post('/v1/completions', body, 'Connection: keep-alive\r\n', '1.0'))
    const [r] = await conn.untilClosed()
    t.equal(r?.status, 200)
    t.equal(r?.headers['content-type'], 'text/event-stream')
    t.notOk(r?.headers['transfer-encoding'], 'no Transfer-Encoding for an HTTP/1.0 client')
    t.equal(r?.headers['connection'], 'close', 'the stream ends with the connection, even when keep-alive was asked')
    t.match(r?.body, /^data: \{/, 'the body is the SSE frames themselves, no chunk sizes')
    t.match(r?.body, /data: \[DONE\]\n\n$/)
    await stillServes(t)
  })

  t.test('HTTP/1.1 without Host', async (t) => {
    const { responses, conn } = await rawExchange(url, 'GET /health HTTP/1.1\r\n\r\n')
    await conn.closed
    isError(t, responses[0], 400, 'bad_request')
    t.match(responses[0]!.body, /Host/)
    await stillServes(t)
  })

  t.test('pipelining after a POST', async (t) => {
    const stream = JSON.stringify({ model: MODEL, prompt: 'The', max_tokens: 5, stream: true })
    const conn = new RawConnection(url)
    conn.write(post('/v1/completions', completion) + 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n' + post('/v1/completions', stream) + 'GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const rs = await conn.responses(4)
    t.same(rs.map((r) => r.status), [200, 200, 200, 200], 'all four answered')
    t.equal(JSON.parse(rs[0]!.body).object, 'text_completion', 'in order: the completion')
    t.equal(JSON.parse(rs[1]!.body).status, 'ok', 'then /health')
    t.match(rs[2]!.body, /data: \[DONE\]\n\n$/, 'then the stream')
    t.equal(JSON.parse(rs[3]!.body).object, 'list', 'then /v1/models')
    t.notOk(conn.isClosed, 'the connection stays open')
    conn.destroy()
    await stillServes(t)
  })

  t.test('Content-Length', async (t) => {
    const two = await rawExchange(url, `POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${completion.length}\r\nContent-Length: 5\r\n\r\n${completion}`)
    await two.conn.closed
    isError(t, two.responses[0], 400, 'bad_request')
    t.match(two.responses[0]!.body, /Content-Length/)
    // RFC 9112 6.3 lets a server accept identical duplicates as one; llhttp refuses them, which is as safe
    const same = await rawExchange(url, `POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${completion.length}\r\nContent-Length: ${completion.length}\r\n\r\n${completion}`)
    await same.conn.closed
    isError(t, same.responses[0], 400, 'bad_request')
    for (const bad of ['abc', '-1', '+5', '0x10', '']) {
      const r = await rawExchange(url, `POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${bad}\r\n\r\n${completion}`)
      await r.conn.closed
      isError(t, r.responses[0], 400, 'bad_request')
    }
    const huge = await rawExchange(url, 'POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999\r\n\r\n')
    await huge.conn.closed
    isError(t, huge.responses[0], 413, 'request_too_large')
    await stillServes(t)
  })

  t.test('methods', async (t) => {
    const foo = await rawExchange(url, 'FOO /health HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await foo.conn.closed
    isError(t, foo.responses[0], 501, 'method_not_implemented')
    const put = await rawExchange(url, 'PUT /v1/models HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n')
    t.equal(put.responses[0]?.status, 405, 'a known method on a route without it')
    put.conn.destroy()

    // HEAD's response carries GET's Content-Length but no body: the next response follows its head directly
    const headReq = new RawConnection(url)
    headReq.write('HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await headReq.until((text) => text.includes('\r\n\r\n'))
    headReq.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await headReq.until((text) => text.endsWith('}'))
    const [h, g] = headReq.text.split(/(?<=\r\n\r\n)(?=HTTP\/1\.1 )/)
    t.match(h, /^HTTP\/1\.1 200 OK\r\n/, 'HEAD')
    const length = (text = '') => /content-length: (\d+)/i.exec(text)?.[1]
    t.equal(length(h), length(g), 'HEAD has the length of GET')
    t.ok(h?.endsWith('\r\n\r\n'), 'and no body')
    t.match(g, /\{"status":"ok"/)
    headReq.destroy()
    await stillServes(t)
  })

  t.test('too many or too large headers', async (t) => {
    const many = await rawExchange(url, 'GET /health HTTP/1.1\r\nHost: localhost\r\n' + Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join('') + '\r\n')
    await many.conn.closed
    isError(t, many.responses[0], 431, 'headers_too_large')
    const big = await rawExchange(url, 'GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ' + 'a'.repeat(40000) + '\r\n\r\n')
    await big.conn.closed
    isError(t, big.responses[0], 431, 'headers_too_large')
    const bigNoEnd = await rawExchange(url, 'GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ' + 'a'.repeat(40000))
    await bigNoEnd.conn.closed
    isError(t, bigNoEnd.responses[0], 431, 'headers_too_large')
    await stillServes(t)
  })

  t.test('a stalled body or head gets 408 after --body-timeout', async (t) => {
    const body = await rawExchange(url, `POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${completion.length}\r\n\r\n${completion.slice(0, 10)}`)
    await body.conn.closed
    isError(t, body.responses[0], 408, 'request_timeout')
    t.match(body.responses[0]!.body, /--body-timeout/)
    const headOnly = await rawExchange(url, 'GET /health HTTP/1.1\r\nHost: loc')
    await headOnly.conn.closed
    isError(t, headOnly.responses[0], 408, 'request_timeout')
    await stillServes(t)
  })

  t.test('100-continue and chunked uploads', async (t) => {
    const conn = new RawConnection(url)
    conn.write(`POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: ${completion.length}\r\n\r\n`)
    const [cont] = await conn.responses(1)
    t.equal(cont?.status, 100, '100 Continue before the body')
    conn.write(completion)
    const [, done] = await conn.responses(2)
    t.equal(done?.status, 200)
    t.equal(JSON.parse(done!.body).usage.completion_tokens, 3)
    const half = Math.floor(completion.length / 2)
    conn.write(`POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${half.toString(16)}\r\n${completion.slice(0, half)}\r\n`)
    conn.write(`${(completion.length - half).toString(16)}\r\n${completion.slice(half)}\r\n0\r\n\r\n`)
    const [, , chunked] = await conn.responses(3)
    t.equal(chunked?.status, 200, 'a chunked body')
    t.equal(JSON.parse(chunked!.body).usage.completion_tokens, 3)
    conn.destroy()
    const bad = await rawExchange(url, 'POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
    await bad.conn.closed
    isError(t, bad.responses[0], 400, 'bad_request')
    await stillServes(t)
  })

  t.test('an SSE reader that stops reading still gets the whole stream', async (t) => {
    // 16 choices with 20 alternatives per token: about 5 MB, more than the socket buffers between here and
    // the server hold (about 4 MB on Linux), so the server's writes meet backpressure, its last one included
    const body = JSON.stringify({
      model: MODEL, messages: [{ role: 'user', content: 'The' }], max_tokens: 200, n: 16, logprobs: true, top_logprobs: 20, stream: true, ignore_eos: true,
    })
    const generated = async () => Number(/hearth_generated_tokens_total (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())![1])
    const before = await generated()
    const conn = new RawConnection(url)
    conn.socket.pause()
    conn.write(post('/v1/chat/completions', body))
    // wait for the event "all 16 x 240 tokens generated", with this client still not reading
    while ((await generated()) < before + 16 * 200) await new Promise((r) => setTimeout(r, 100))
    t.equal(conn.text, '', 'nothing read yet')
    conn.socket.resume()
    const [r] = await conn.responses(1)
    t.equal(r?.status, 200)
    t.ok(r?.chunked, 'chunked over HTTP/1.1')
    t.match(r?.raw, /0\r\n\r\n$/, 'the response is finished (last chunk)')
    const frames = r!.body.split('\n\n').filter(Boolean)
    t.equal(frames.at(-1), 'data: [DONE]', 'ends with [DONE]')
    const finishes = frames.filter((f) => f.includes('"finish_reason":"length"')).length
    t.equal(finishes, 16, 'every choice finished')
    t.ok(r!.body.length > 1_000_000, `a large stream (${r!.body.length} bytes)`)
    conn.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const [, next] = await conn.responses(2)
    t.equal(next?.status, 200, 'the connection goes on')
    conn.destroy()
    await stillServes(t)
  })

  t.test('refusals are counted', async (t) => {
    // before routing under a label of their own; a stalled body under its route
    const m = await (await fetch(`${url}/metrics`)).text()
    t.match(m, /hearth_requests_total\{route="refused",status="400"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="refused",status="408"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="refused",status="431"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="refused",status="501"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="\/v1\/completions",status="408"\} [1-9]/)
  })
})

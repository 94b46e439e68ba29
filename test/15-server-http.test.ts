// HTTP edge cases over raw sockets: HTTP/1.0, a missing Host, pipelining behind a POST, malformed and
// oversized heads, stalled bodies, HEAD, 100-continue, chunked uploads, and an SSE reader that stops reading.
// Every case gets a status (never a silent close) and the server goes on serving. The framing parser and the
// SSE writer's backpressure also get fast tests without the model.
import t, { type Test } from 'tap'
import { errorCodes, HearthError } from '../lib/errors.js'
import { ChunkedDecoder, findHeadEnd, MAX_HEADERS, parseRequestHead, rebuildHead } from '../server/http-parse.js'
import { Reply, type RequestInfo } from '../server/http.js'
import type { HttpResponse } from '../server/uws.js'
import { RawConnection, rawExchange, startTestServer, type RawResponse } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'

function head(text: string, bodyLimit = 1 << 20) {
  const buf = Buffer.from(text, 'latin1')
  const end = findHeadEnd(buf)
  if (end < 0) throw new Error('incomplete head')
  return parseRequestHead(buf, end, bodyLimit)
}

function refusal(fn: () => unknown): { status: number; code: string; message: string } {
  try {
    fn()
  } catch (err) {
    if (err instanceof HearthError) return { status: err.status, code: err.code, message: err.message }
    throw err
  }
  throw new Error('expected a refusal')
}

t.test('request heads (no model)', async (t) => {
  const ok = head('POST /v1/completions?x=1 HTTP/1.1\r\nHost: localhost:1234\r\nContent-Length: 12\r\n\r\n')
  t.match(ok, { method: 'POST', target: '/v1/completions?x=1', minor: 1, host: 'localhost:1234', contentLength: 12, chunked: false, keepAlive: true, verbatim: true })
  t.equal(head('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n').keepAlive, false, '1.1 with close')
  t.match(head('GET / HTTP/1.0\r\n\r\n'), { minor: 0, host: null, keepAlive: false, verbatim: false }, '1.0 without Host')
  t.equal(head('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true, '1.0 keep-alive only when asked')
  t.equal(head('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n').contentLength, 5, 'identical duplicate Content-Length')
  t.match(head('GET http://localhost:9/v1/models HTTP/1.1\r\nHost: other\r\n\r\n'), { target: '/v1/models', host: 'localhost:9', verbatim: false }, 'absolute-form')
  t.match(head('HEAD /health HTTP/1.1\r\nHost: a\r\n\r\n'), { method: 'HEAD', verbatim: false })
  t.match(head('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'), { chunked: true, verbatim: false })
  t.match(head('POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'), { expectContinue: true, verbatim: false })

  const cases: [string, string, number][] = [
    ['two different Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400],
    ['Content-Length not digits', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n', 400],
    ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400],
    ['Content-Length as a list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n', 400],
    ['Content-Length over the limit', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n', 413],
    ['Transfer-Encoding with Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['Transfer-Encoding gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['Transfer-Encoding in 1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['malformed Host', 'GET / HTTP/1.1\r\nHost: a b@c\r\n\r\n', 400],
    ['unknown method', 'FOO / HTTP/1.1\r\nHost: a\r\n\r\n', 501],
    ['lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n', 501],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['garbage request line', 'hello\r\n\r\n', 400],
    ['target not a path', 'GET v1/models HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['folded header', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n', 400],
    ['control character in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n', 400],
    ['Expect other than 100-continue', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n', 417],
    [`${MAX_HEADERS + 1} headers`, 'GET / HTTP/1.1\r\nHost: a\r\n' + 'X-A: b\r\n'.repeat(MAX_HEADERS) + '\r\n', 431],
  ]
  for (const [name, text, status] of cases) t.equal(refusal(() => head(text, 1000)).status, status, `${name}: ${status}`)
  t.equal(head('GET / HTTP/1.1\r\nHost: a\r\n' + 'X-A: b\r\n'.repeat(MAX_HEADERS - 1) + '\r\n').headers.length, MAX_HEADERS, `${MAX_HEADERS} headers are accepted`)
  t.equal(refusal(() => findHeadEnd(Buffer.from('GET / HTTP/1.1\nHost: a\n\n'))).status, 400, 'bare LF line ends')
  t.equal(refusal(() => findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(40000)))).status, 431, 'a head past the size limit, before its end arrives')
  t.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')), -1, 'an incomplete head waits')

  const rebuilt = rebuildHead(head('HEAD /health HTTP/1.0\r\nConnection: keep-alive\r\nX-A: b\r\n\r\n'), 0, '127.0.0.1:80')
  t.equal(rebuilt, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1:80\r\nx-a: b\r\n\r\n', 'HEAD over 1.0 is asked of uWS as a 1.1 GET with a Host')

  const parts: string[] = []
  const d = new ChunkedDecoder(100, (b, s, e) => parts.push(b.toString('latin1', s, e)))
  const wire = Buffer.from('5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT')
  let used = 0
  for (let i = 0; i < wire.length && !d.done; i++) used += d.push(wire.subarray(i, i + 1)) // one byte at a time
  t.ok(d.done)
  t.equal(parts.join(''), 'hello world')
  t.equal(wire.subarray(used).toString(), 'NEXT', 'stops at the end of the body')
  t.equal(refusal(() => new ChunkedDecoder(100, null).push(Buffer.from('zz\r\n'))).status, 400, 'malformed chunk size')
  t.equal(refusal(() => new ChunkedDecoder(100, null).push(Buffer.from('3\r\nabcd\r\n'))).status, 400, 'chunk longer than its size')
  t.equal(refusal(() => new ChunkedDecoder(4, null).push(Buffer.from('5\r\nhello\r\n'))).status, 413, 'chunked body over the limit')
  for (const code of ['bad_request', 'request_timeout', 'expectation_failed', 'headers_too_large', 'method_not_implemented', 'http_version_not_supported'] as const) {
    t.ok(errorCodes[code], `${code} is registered`)
  }
})

/** A stand-in for uWS's HttpResponse whose write() answers from a script, to drive SseWriter's backpressure. */
class FakeResponse {
  written = ''
  /** bytes of each write() */
  sizes: number[] = []
  ended = false
  writes: boolean[]
  #onWritable: (() => boolean) | null = null

  constructor(writes: boolean[]) {
    this.writes = writes
  }
  onAborted(): this {
    return this
  }
  onWritable(fn: () => boolean): this {
    this.#onWritable = fn
    return this
  }
  cork(fn: () => void): this {
    fn()
    return this
  }
  writeStatus(): this {
    return this
  }
  writeHeader(): this {
    return this
  }
  write(chunk: string | Uint8Array): boolean {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk)
    this.sizes.push(bytes.length)
    this.written += bytes.toString('latin1')
    return this.writes.shift() ?? true
  }
  end(body = ''): this {
    this.written += body
    this.ended = true
    return this
  }
  /** uWS calls this when the socket has drained */
  drain(): boolean {
    return this.#onWritable!()
  }
}

t.test('SSE writer under backpressure (no model)', async (t) => {
  const info: RequestInfo = { method: 'POST', url: '/v1/completions', query: '', headers: {}, params: [] }
  const tick = () => new Promise((r) => setImmediate(r))

  // the last write (with [DONE]) meets backpressure: the stream must still end once the socket drains
  const last = new FakeResponse([true, false])
  let finished = 0
  const reply = new Reply(last as unknown as HttpResponse, info, [], () => finished++)
  const sse = reply.sse()
  sse.send({ a: 1 })
  await tick()
  sse.send({ b: 2 })
  sse.send('[DONE]')
  sse.end()
  await tick()
  t.notOk(last.ended, 'not ended while blocked')
  t.equal(last.drain(), true)
  t.ok(last.ended, 'ended after onWritable')
  t.equal(finished, 1, 'the reply finished once')
  t.equal(last.written, 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n')

  // frames written while blocked wait, in order, and the end follows them
  const mid = new FakeResponse([false, true])
  const sse2 = new Reply(mid as unknown as HttpResponse, info, [], () => undefined).sse()
  sse2.send(1)
  await tick()
  sse2.send(2)
  sse2.send(3)
  sse2.end()
  await tick()
  t.equal(mid.written, 'data: 1\n\n', 'nothing more while blocked')
  mid.drain()
  t.equal(mid.written, 'data: 1\n\ndata: 2\n\ndata: 3\n\n')
  t.ok(mid.ended)

  // a large flush goes out in pieces that fit uWS's 16 KiB cork buffer (uWS 20.30 drops the overflow of a
  // corked write under backpressure); multi-byte text may be cut between pieces, the bytes stay whole
  const big = new FakeResponse([true, true, false])
  const sse3 = new Reply(big as unknown as HttpResponse, info, [], () => undefined).sse()
  const frame = 'é'.repeat(5000) + '€'.repeat(5000)
  for (let i = 0; i < 4; i++) sse3.send(frame)
  sse3.end()
  await tick()
  t.equal(big.sizes.length, 3, 'stops at the piece that met backpressure')
  t.ok(big.sizes.every((n) => n <= 12 * 1024), `pieces of at most 12 KiB (${big.sizes.join(', ')})`)
  t.notOk(big.ended)
  big.drain()
  t.ok(big.ended)
  t.ok(big.sizes.every((n) => n <= 12 * 1024), 'after the drain too')
  t.equal(Buffer.from(big.written, 'latin1').toString('utf8'), `data: ${frame}\n\n`.repeat(4), 'every byte, in order')
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
    const same = await rawExchange(url, `POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${completion.length}\r\nContent-Length: ${completion.length}\r\n\r\n${completion}`)
    t.equal(same.responses[0]?.status, 200, 'two identical Content-Length headers are one')
    same.conn.destroy()
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
    // uWS hold (about 4 MB on Linux), so the server's writes meet backpressure, its last one included. Not
    // much more: uWS drops a response whose writes stay blocked for about 10 s.
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
    const m = await (await fetch(`${url}/metrics`)).text()
    t.match(m, /hearth_requests_total\{route="front",status="400"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="front",status="408"\} [1-9]/)
    t.match(m, /hearth_requests_total\{route="front",status="431"\} [1-9]/)
  })
})

// Images in chat completions and responses, on the vision test pair (`npm run test-models`: a random-weight mlp
// projector and a Qwen2.5-template text model 64 wide): an image is part of the prompt (usage, log-probabilities,
// the prompt cache), bad images and the limits are 4xx naming what to change, and encoding an image does not stop
// other streams (the order of events with the encoder held, no timing).
import { readFileSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import t from 'tap'
import { Model } from '../lib/index.js'
import { packageRoot } from '../lib/native.js'
import { ensureTestModel } from './models/make-test-models.js'
import { failure, post, startTestServer, tempDir } from './server-helpers.js'

const JPEG = readFileSync(join(packageRoot, 'deps', 'llama.cpp', 'tools', 'mtmd', 'test-1.jpeg'))

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c
})

function crc32(b: Uint8Array): number {
  let c = -1
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** A w x h RGB PNG whose pixel (x, y) is rgb(x, y). */
function png(w: number, h: number, rgb: (x: number, y: number) => [number, number, number]): Buffer {
  const raw = Buffer.alloc(h * (1 + 3 * w))
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set(rgb(x, y), y * (1 + 3 * w) + 1 + 3 * x)
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(w, 0)
  ihdr.writeUInt32BE(h, 4)
  ihdr.set([8, 2, 0, 0, 0], 8) // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}

/** A w x h 24-bit BMP whose pixel (x, y) is rgb(x, y). */
function bmp(w: number, h: number, rgb: (x: number, y: number) => [number, number, number]): Buffer {
  const row = (w * 3 + 3) & ~3
  const out = Buffer.alloc(54 + row * h)
  out.write('BM', 0, 'latin1')
  out.writeUInt32LE(out.length, 2)
  out.writeUInt32LE(54, 10)
  out.writeUInt32LE(40, 14)
  out.writeInt32LE(w, 18)
  out.writeInt32LE(h, 22)
  out.writeUInt16LE(1, 26)
  out.writeUInt16LE(24, 28)
  out.writeUInt32LE(row * h, 34)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = rgb(x, y)
      out.set([b, g, r], 54 + (h - 1 - y) * row + 3 * x) // bottom-up rows, BGR
    }
  }
  return out
}

const dataUrl = (bytes: Uint8Array, type: string) => `data:${type};base64,${Buffer.from(bytes).toString('base64')}`
const PNG_A = png(48, 48, (x, y) => [x * 5, y * 5, 128])
const PNG_B = png(48, 48, (x, y) => [255 - y * 5, 30, x * 5])

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } }
const withImage = (url: string, text = 'What is in this picture?'): Part[] => [
  { type: 'text', text },
  { type: 'image_url', image_url: { url, detail: 'low' } },
  { type: 'text', text: 'Answer briefly.' },
]

t.test('images on the vision pair', async (t) => {
  const model = await ensureTestModel('vision-text.gguf')
  const mmproj = await ensureTestModel('vision-mmproj.gguf')
  const { client, baseURL } = await startTestServer(t, ['--model', model, '--mmproj', mmproj, '--ctx', '512', '--parallel', '2'])
  const first = async (content: Part[] | string) => {
    const r = await client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content }], max_tokens: 1, temperature: 0, logprobs: true })
    return { r, lp: r.choices[0]!.logprobs!.content![0]! }
  }

  t.test('/v1/models says the model reads images', async (t) => {
    const list = await fetch(`${baseURL}/models`).then((r) => r.json() as Promise<{ data: { id: string; state: string; capabilities: string[] }[] }>)
    const served = list.data.find((m) => m.state === 'loaded')!
    t.ok(served.capabilities.includes('vision'), `${served.id}: ${served.capabilities.join(', ')}`)
  })

  t.test('an image is part of the prompt: counted in usage, and it changes the first token', async (t) => {
    const text = await first([{ type: 'text', text: 'What is in this picture?' }, { type: 'text', text: 'Answer briefly.' }])
    const a = await first(withImage(dataUrl(PNG_A, 'image/png')))
    const again = await first(withImage(dataUrl(PNG_A, 'image/png')))
    const b = await first(withImage(dataUrl(PNG_B, 'image/png')))
    const jpeg = await first(withImage(dataUrl(JPEG, 'image/jpeg')))
    // the same pixels as a BMP read as the PNG did
    const asBmp = await first(withImage(dataUrl(bmp(48, 48, (x, y) => [x * 5, y * 5, 128]), 'image/bmp')))
    t.equal(asBmp.lp.logprob, a.lp.logprob, 'a BMP of the same pixels gives the PNG’s log-probability')
    const gif = await first(withImage('data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7'))
    t.equal(gif.r.usage!.prompt_tokens, a.r.usage!.prompt_tokens, 'a 1x1 GIF is read too')
    // the projector gives 16 embeddings per image; the text around them is the same
    t.ok(a.r.usage!.prompt_tokens >= text.r.usage!.prompt_tokens + 16, `${a.r.usage!.prompt_tokens} prompt tokens with the image, ${text.r.usage!.prompt_tokens} without`)
    t.equal(a.r.usage!.prompt_tokens, b.r.usage!.prompt_tokens, 'every image of this projector is 16 tokens')
    t.equal(jpeg.r.usage!.prompt_tokens, a.r.usage!.prompt_tokens, 'a JPEG as a PNG')
    t.not(a.lp.logprob, b.lp.logprob, 'two images give different first-token log-probabilities')
    t.not(a.lp.logprob, jpeg.lp.logprob)
    t.not(a.lp.logprob, text.lp.logprob)
    t.equal(again.lp.token, a.lp.token, 'the same image gives the same output')
    t.equal(again.lp.logprob, a.lp.logprob)
    t.equal(again.r.usage!.prompt_tokens_details?.cached_tokens, again.r.usage!.prompt_tokens - 1, 'the same image again comes from the prompt cache')
    // another image shares only the text before it: a cached prefix stops where the images differ
    const bCached = b.r.usage!.prompt_tokens_details?.cached_tokens ?? 0
    t.ok(bCached > 0 && bCached <= b.r.usage!.prompt_tokens - 16 - 3, `${bCached} cached tokens: the text before the image`)
  })

  t.test('a second turn that resends the image reuses its cells', async (t) => {
    const user = { role: 'user' as const, content: withImage(dataUrl(PNG_B, 'image/png'), 'Describe the colours.') }
    const r1 = await client.chat.completions.create({ model: 'vision-text', messages: [user], max_tokens: 4, temperature: 0 })
    const answer = r1.choices[0]!.message.content ?? ''
    const r2 = await client.chat.completions.create({
      model: 'vision-text',
      messages: [user, { role: 'assistant', content: answer }, { role: 'user', content: 'And the shapes?' }],
      max_tokens: 1,
      temperature: 0,
    })
    const cached = r2.usage!.prompt_tokens_details?.cached_tokens ?? 0
    t.ok(cached >= r1.usage!.prompt_tokens - 1, `${cached} cached tokens cover the first turn's ${r1.usage!.prompt_tokens} (and its image)`)
  })

  t.test('streamed: usage counts the image', async (t) => {
    const stream = await client.chat.completions.create({
      model: 'vision-text',
      messages: [{ role: 'user', content: withImage(dataUrl(JPEG, 'image/jpeg')) }],
      max_tokens: 3,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    })
    let usage = null
    for await (const chunk of stream) usage = chunk.usage ?? usage
    t.ok(usage && usage.prompt_tokens > 16)
  })

  t.test('bad images are 400s naming the part, and the server keeps serving', async (t) => {
    const refuse = async (url: string, status: number, code: string, message: RegExp) => {
      const err = await failure(client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: withImage(url) }], max_tokens: 1 }))
      t.equal(err.status, status, code)
      t.equal(err.code, code)
      t.equal(err.param, 'messages[0].content[1].image_url.url')
      t.match(err.message, message)
    }
    const junk = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff))
    await refuse(dataUrl(junk, 'image/png'), 400, 'unsupported_media_type', /PNG, JPEG, GIF, BMP/)
    const webp = Buffer.concat([Buffer.from('RIFF\x00\x01\x00\x00WEBPVP8 ', 'latin1'), junk])
    await refuse(dataUrl(webp, 'image/webp'), 400, 'unsupported_media_type', /WebP.*PNG, JPEG, GIF, BMP/)
    await refuse(dataUrl(JPEG.subarray(0, JPEG.length >> 1), 'image/jpeg'), 400, 'invalid_media', /truncated/)
    const corruptPng = Buffer.concat([PNG_A.subarray(0, 33), junk])
    await refuse(dataUrl(corruptPng, 'image/png'), 400, 'invalid_media', /./)
    await refuse('data:image/png;base64,@@not base64@@', 400, 'invalid_media', /base64/)
    await refuse('https://example.com/cat.png', 400, 'remote_media_disabled', /data: URL/)
    const wav = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'), junk]).toString('base64')
    const audio = await post(`${baseURL}/chat/completions`, {
      messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: wav, format: 'wav' } }, { type: 'text', text: 'hi' }] }],
      max_tokens: 1,
    })
    t.equal(audio.status, 400, 'audio for a projector without an audio encoder')
    t.equal(audio.json.error.code, 'model_not_multimodal')
    t.equal(audio.json.error.param, 'messages[0].content[0].input_audio')
    const r = await client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: withImage(dataUrl(PNG_A, 'image/png')) }], max_tokens: 1 })
    t.equal(r.choices.length, 1, 'still serving')
  })

  t.test('/v1/responses: input_image counts; input_file is a 400', async (t) => {
    const text = await client.responses.create({ model: 'vision-text', input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is this?' }] }], max_output_tokens: 1, store: false })
    const image = await client.responses.create({
      model: 'vision-text',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: dataUrl(PNG_A, 'image/png'), detail: 'auto' }] }],
      max_output_tokens: 1,
    })
    t.ok(image.usage!.input_tokens >= text.usage!.input_tokens + 16, `${image.usage!.input_tokens} input tokens with the image, ${text.usage!.input_tokens} without`)
    // the stored conversation keeps the image: a follow-up reuses its cells
    const next = await client.responses.create({ model: 'vision-text', previous_response_id: image.id, input: 'And now?', max_output_tokens: 1 })
    t.ok((next.usage!.input_tokens_details?.cached_tokens ?? 0) >= image.usage!.input_tokens - 1, 'the follow-up reuses the stored image turn')
    const r = await post(`${baseURL}/responses`, {
      model: 'vision-text',
      input: [{ role: 'user', content: [{ type: 'input_file', file_data: 'data:application/pdf;base64,JVBERi0=' }] }],
    })
    t.equal(r.status, 400)
    t.equal(r.json.error.param, 'input[0].content[0].type')
  })
})

t.test('limits: --max-media-bytes (413) and --max-media-per-request (400) name the flag', async (t) => {
  const model = await ensureTestModel('vision-text.gguf')
  const mmproj = await ensureTestModel('vision-mmproj.gguf')
  const { client } = await startTestServer(t, ['--model', model, '--mmproj', mmproj, '--ctx', '512', '--parallel', '1', '--max-media-bytes', '20000', '--max-media-per-request', '1'])
  const big = await failure(client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: withImage(dataUrl(JPEG, 'image/jpeg')) }], max_tokens: 1 }))
  t.equal(big.status, 413)
  t.equal(big.code, 'media_too_large')
  t.match(big.message, /--max-media-bytes/)
  const two = [...withImage(dataUrl(PNG_A, 'image/png')), { type: 'image_url' as const, image_url: { url: dataUrl(PNG_B, 'image/png') } }]
  const many = await failure(client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: two }], max_tokens: 1 }))
  t.equal(many.status, 400)
  t.equal(many.code, 'too_many_media')
  t.match(many.message, /--max-media-per-request/)
  const ok = await client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: withImage(dataUrl(PNG_A, 'image/png')) }], max_tokens: 1 })
  t.ok(ok.usage!.prompt_tokens > 16, 'one small image is within both limits')
})

t.test('an mmproj-*.gguf beside the model is loaded without --mmproj', async (t) => {
  const dir = tempDir(t)
  symlinkSync(await ensureTestModel('vision-text.gguf'), join(dir, 'tiny-vl.gguf'))
  symlinkSync(await ensureTestModel('vision-mmproj.gguf'), join(dir, 'mmproj-tiny-vl.gguf'))
  const { client, baseURL } = await startTestServer(t, ['--model', join(dir, 'tiny-vl.gguf'), '--ctx', '512', '--parallel', '1'])
  const list = await fetch(`${baseURL}/models`).then((r) => r.json() as Promise<{ data: { id: string; capabilities: string[] }[] }>)
  t.ok(list.data.find((m) => m.id === 'tiny-vl')!.capabilities.includes('vision'), 'the projector beside it was paired')
  const r = await client.chat.completions.create({ model: 'tiny-vl', messages: [{ role: 'user', content: withImage(dataUrl(PNG_A, 'image/png')) }], max_tokens: 1 })
  t.ok(r.usage!.prompt_tokens > 16)
})

t.test('a text-only model refuses an image, naming the flag', async (t) => {
  const { client } = await startTestServer(t)
  const err = await failure(client.chat.completions.create({ model: 'austen-kjv-2.6m-f32', messages: [{ role: 'user', content: withImage(dataUrl(PNG_A, 'image/png')) }], max_tokens: 1 }))
  t.equal(err.status, 400)
  t.equal(err.code, 'model_not_multimodal')
  t.equal(err.param, 'messages[0].content[1].image_url.url')
  t.match(err.message, /--mmproj/)
  const list = await fetch(`${client.baseURL}/models`).then((r) => r.json() as Promise<{ data: { id: string; capabilities: string[] }[] }>)
  t.notOk(list.data.find((m) => m.id === 'austen-kjv-2.6m-f32')!.capabilities.includes('vision'), 'no vision without a projector')
})

t.test('text streams keep producing tokens while an image is encoded', async (t) => {
  const model = await Model.load(await ensureTestModel('vision-text.gguf'), {
    projector: await ensureTestModel('vision-mmproj.gguf'),
    threads: 1,
    parallel: 5,
    contextSize: 256,
  })
  t.teardown(() => model.dispose())
  const projector = model.projector!
  // the encoder is held until the test lets it go: whatever the text streams produce meanwhile was produced
  // while the image was being encoded
  const events: string[] = []
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let started!: () => void
  const encodeStarted = new Promise<void>((resolve) => (started = resolve))
  const encode = projector.encode.bind(projector)
  projector.encode = async (chunk) => {
    events.push('encode-start')
    started()
    await held
    const e = await encode(chunk)
    events.push('encode-end')
    return e
  }
  // the image request first: its encoding starts and is held
  const image = (async () => {
    const g = await model.chat([{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', data: PNG_A }] }], { sampling: { temperature: 0, maxTokens: 4 } })
    for await (const e of g) if (e.kind === 'token') events.push('image-token')
  })()
  await encodeStarted
  // then four text streams, each of which must produce 5 tokens before the encoder is let go
  const counts = [0, 0, 0, 0]
  const fifth: Promise<void>[] = []
  const textStreams = counts.map(async (_, i) => {
    let reached!: () => void
    fifth.push(new Promise<void>((resolve) => (reached = resolve)))
    const g = await model.chat([{ role: 'user', content: `Count to ${i + 3}.` }], { sampling: { temperature: 0, maxTokens: 40, ignoreEos: true } })
    for await (const e of g) {
      if (e.kind !== 'token') continue
      if (!events.includes('encode-end')) events.push(`text-${i}`)
      if (++counts[i]! === 5) reached()
    }
  })
  await Promise.all(fifth)
  t.ok(events.filter((e) => e.startsWith('text-')).length >= 20, 'the text streams produced tokens while the encoder was held')
  t.notOk(events.includes('image-token'), 'the image request waits for its embeddings')
  release()
  await image
  await Promise.all(textStreams)
  const end = events.indexOf('encode-end')
  t.ok(end > 0 && events.indexOf('image-token') > end, 'the image request answered after its encoding')
  t.same(counts, [40, 40, 40, 40], 'every text stream ran to its limit')
})

t.test('remote image URLs: refused by default; with --allow-remote-media fetched under the outbound policy', async (t) => {
  // a local HTTP server: the image, and a redirect to a private address
  const files = createServer((req, res) => {
    if (req.url === '/a.png') res.writeHead(200, { 'content-type': 'image/png' }).end(PNG_A)
    else if (req.url === '/to-private') res.writeHead(302, { location: 'http://10.1.2.3/a.png' }).end()
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => files.close(() => resolve())))
  const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`
  const model = await ensureTestModel('vision-text.gguf')
  const mmproj = await ensureTestModel('vision-mmproj.gguf')
  const ask = (client: import('openai').OpenAI, url: string) =>
    client.chat.completions.create({ model: 'vision-text', messages: [{ role: 'user', content: withImage(url) }], max_tokens: 1, temperature: 0, logprobs: true })

  const open = await startTestServer(t, ['--model', model, '--mmproj', mmproj, '--ctx', '512', '--parallel', '1', '--allow-remote-media'])
  const loopback = await failure(ask(open.client, `${base}/a.png`))
  t.equal(loopback.status, 400, 'a loopback address is refused unless --fetch-allow lists it')
  t.equal(loopback.code, 'fetch_not_allowed')

  const allowed = await startTestServer(t, ['--model', model, '--mmproj', mmproj, '--ctx', '512', '--parallel', '1', '--allow-remote-media', '--fetch-allow', '127.0.0.1'])
  const fetched = await ask(allowed.client, `${base}/a.png`)
  const inline = await ask(allowed.client, dataUrl(PNG_A, 'image/png'))
  t.equal(fetched.choices[0]!.logprobs!.content![0]!.logprob, inline.choices[0]!.logprobs!.content![0]!.logprob, 'the fetched image is the same image')
  const redirected = await failure(ask(allowed.client, `${base}/to-private`))
  t.equal(redirected.status, 400, 'a redirect to a private address is refused')
  t.equal(redirected.code, 'fetch_not_allowed')
  const missing = await failure(ask(allowed.client, `${base}/missing.png`))
  t.equal(missing.status, 400)
  t.equal(missing.code, 'fetch_failed')
})

// Media without a projector: what the bytes are, which projector file pairs with a model, pseudo-tokens, and how a
// step's batch and the prompt cache treat a media span (decoded whole, once its embeddings are there).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildBatch, clampToSpans, type BatchMember } from '../lib/batch.js'
import { jpegComplete, pairedProjector, pseudoTokens, sniffMedia, type MediaSpan } from '../lib/media.js'

t.test('sniffMedia reads the format from the bytes', async (t) => {
  const b = (s: string) => Buffer.from(s, 'latin1')
  t.equal(sniffMedia(b('\x89PNG\r\n\x1a\n....')), 'PNG')
  t.equal(sniffMedia(b('\xff\xd8\xff\xe0')), 'JPEG')
  t.equal(sniffMedia(b('GIF89a....')), 'GIF')
  t.equal(sniffMedia(b('BM' + '\0'.repeat(30))), 'BMP')
  t.equal(sniffMedia(b('RIFF\0\0\0\0WEBPVP8 ')), 'WebP')
  t.equal(sniffMedia(b('RIFF\0\0\0\0WAVEfmt ')), 'WAV')
  t.equal(sniffMedia(b('%PDF-1.7')), null)
  t.ok(jpegComplete(b('\xff\xd8\xff\xe0...\xff\xd9\0\0')))
  t.notOk(jpegComplete(b('\xff\xd8\xff\xe0...')))
})

t.test('pairedProjector: an mmproj-*.gguf beside the model, the closest name, none on a tie', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-pair-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const touch = (n: string) => writeFileSync(join(dir, n), '')
  touch('SmolVLM-256M-Q8_0.gguf')
  t.equal(await pairedProjector(join(dir, 'SmolVLM-256M-Q8_0.gguf')), null, 'none there')
  touch('mmproj-SmolVLM-256M-f16.gguf')
  t.equal(await pairedProjector(join(dir, 'SmolVLM-256M-Q8_0.gguf')), join(dir, 'mmproj-SmolVLM-256M-f16.gguf'))
  touch('mmproj-gemma-3-4b.gguf')
  t.equal(await pairedProjector(join(dir, 'SmolVLM-256M-Q8_0.gguf')), join(dir, 'mmproj-SmolVLM-256M-f16.gguf'), 'the closest name')
  touch('other.gguf')
  t.equal(await pairedProjector(join(dir, 'other.gguf')), null, 'two equally far: no guess')
  t.equal(await pairedProjector(join(dir, 'missing', 'x.gguf')), null, 'no folder')
})

t.test('pseudo-tokens: negative, from the hash, different for different hashes', async (t) => {
  const a = pseudoTokens('a3f1c2d4' + '0'.repeat(56), 16)
  t.ok(a.every((x) => x < 0), 'never a vocabulary id')
  t.same(pseudoTokens('a3f1c2d4' + '0'.repeat(56), 16), a, 'the same image, the same tokens')
  t.not(pseudoTokens('b3f1c2d4' + '0'.repeat(56), 16)[0], a[0], 'another image differs at its first position')
})

function span(start: number, length: number, encoded: boolean): MediaSpan {
  return { start, length, end: start + length, embeddings: encoded ? new Float32Array(length * 4) : null, chunk: {} } as unknown as MediaSpan
}

t.test('a media span is decoded whole from its embeddings, and prefixes never end inside one', async (t) => {
  const prompt = Int32Array.from([1, 2, ...pseudoTokens('00', 6), 3, 4])
  const member = (media: MediaSpan[], booked = 0): BatchMember => ({ slot: 0, prompt, booked, pending: -1, prefilling: true, waiting: false, media })
  // text before the span first, alone: the span is never in a step with the text before it
  let b = buildBatch([member([span(2, 6, true)])], 512, 100)!
  t.same([...b.tokens], [1, 2])
  t.equal(b.media.length, 0)
  b = buildBatch([member([span(2, 6, true)], 2)], 512, 100)!
  t.equal(b.media.length, 1, 'the span, from its embeddings')
  t.same([b.media[0]!.pos, b.entries[0]!.tokens.length], [2, 6])
  t.same([...b.tokens], [3, 4], 'then the text after it, in the same step')
  t.same([...b.positions], [8, 9])
  t.equal(b.sampleAt.length, 1)
  t.equal(buildBatch([member([span(2, 6, true)], 2)], 512, 5), null, 'not when the free cells cannot hold it whole')
  t.equal(buildBatch([member([span(2, 6, false)], 2)], 512, 100), null, 'not before it is encoded')
  b = buildBatch([member([span(2, 6, true)], 2)], 4, 100)!
  t.equal(b.media.length, 1, 'past the token budget when it is the step’s first prefill')
  t.same([...b.tokens], [], 'and nothing after it')
  t.equal(clampToSpans([span(2, 6, true)], 5), 2, 'a cached prefix that ends inside a span stops at its start')
  t.equal(clampToSpans([span(2, 6, true)], 8), 8)
  t.equal(clampToSpans(undefined, 5), 5)
})

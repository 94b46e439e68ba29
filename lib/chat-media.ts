// A chat request's media parts, checked and decoded for the model's projector: the count and size limits, the
// formats the decoder reads (by their bytes, not by what the client says they are), remote URLs only through the
// fetcher the caller configured, and a clear 400 for everything else before anything reaches the projector.
import type { ChatMessage, MediaPart } from './chat-template.js'
import { mediaParts } from './chat-template.js'
import { HearthError } from './errors.js'
import { IMAGE_FORMATS, jpegComplete, sniffMedia, type MediaProjector } from './media.js'
import type { NativeBitmap } from './native.js'

export interface MediaOptions {
  /** most media parts in one request; default 8 */
  maxPerRequest?: number
  /** largest media file in bytes; default 20 MiB */
  maxBytes?: number
  /** largest image in pixels (width x height), read from its header before decoding; default 2^25 */
  maxPixels?: number
  /** fetches an http(s) media URL (the server's outbound-fetch policy); without one, URLs are refused */
  fetch?: (url: string, signal?: AbortSignal) => Promise<Uint8Array>
}

export const MEDIA_DEFAULTS = { maxPerRequest: 8, maxBytes: 20 * 1024 * 1024, maxPixels: 2 ** 25 } as const

const ACCEPTED = IMAGE_FORMATS.join(', ')

/**
 * The bitmaps of `messages`' media parts in template order (empty when there are none). Throws HearthError:
 * model_not_multimodal, too_many_media, media_too_large (413), remote_media_disabled, unsupported_media_type,
 * invalid_media, and the fetcher's own errors.
 */
export async function decodeChatMedia(
  messages: ChatMessage[],
  projector: MediaProjector | null,
  options: MediaOptions,
  modelId: string,
  signal?: AbortSignal,
): Promise<NativeBitmap[]> {
  const parts = mediaParts(messages)
  if (parts.length === 0) return []
  const first = parts[0]!
  if (!projector) {
    throw new HearthError(
      'model_not_multimodal',
      `${first.param} is ${first.part.type === 'image' ? 'an image' : 'audio'}, but ${modelId} reads text only; load it with a multimodal projector (--mmproj FILE, or an mmproj-*.gguf beside the model)`,
      first.param,
    )
  }
  for (const { part, param } of parts) {
    const can = part.type === 'image' ? projector.facts.vision : projector.facts.audio
    if (!can) throw new HearthError('model_not_multimodal', `${param} is ${part.type === 'image' ? 'an image' : 'audio'}, but the projector of ${modelId} reads ${part.type === 'image' ? 'audio' : 'images'} only`, param)
  }
  const max = options.maxPerRequest ?? MEDIA_DEFAULTS.maxPerRequest
  if (parts.length > max) {
    throw new HearthError('too_many_media', `the request has ${parts.length} media parts; at most ${max} are allowed (--max-media-per-request)`, parts[max]!.param)
  }
  const files = await Promise.all(parts.map(({ part, param }) => mediaBytes(part, param, options, signal)))
  return Promise.all(files.map((bytes, i) => projector.decode(bytes, parts[i]!.param)))
}

async function mediaBytes(part: MediaPart, param: string, options: MediaOptions, signal?: AbortSignal): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? MEDIA_DEFAULTS.maxBytes
  let bytes: Uint8Array
  if ('url' in part) {
    if (!/^https?:\/\//i.test(part.url)) throw new HearthError('invalid_media', `${param}: an image URL must be a data: URL or http(s)`, param)
    if (!options.fetch) {
      throw new HearthError('remote_media_disabled', `${param} is a remote URL; this server reads images sent as data: URLs only (start it with --allow-remote-media to fetch URLs)`, param)
    }
    bytes = await options.fetch(part.url, signal)
  } else bytes = part.data
  if (bytes.length > maxBytes) {
    throw new HearthError('media_too_large', `${param} has ${bytes.length} bytes; the limit is ${maxBytes} (--max-media-bytes)`, param)
  }
  if (bytes.length === 0) throw new HearthError('invalid_media', `${param} is empty`, param)
  const kind = sniffMedia(bytes)
  if (part.type === 'image') {
    if (kind === 'WebP') throw new HearthError('unsupported_media_type', `${param} is a WebP image, which this server does not decode; send ${ACCEPTED}`, param)
    if (kind === null || !(IMAGE_FORMATS as readonly string[]).includes(kind)) {
      throw new HearthError('unsupported_media_type', `${param} is not an image format this server reads (${ACCEPTED})`, param)
    }
    if (kind === 'JPEG' && !jpegComplete(bytes)) throw new HearthError('invalid_media', `${param}: the JPEG is truncated (no end-of-image marker)`, param)
  } else {
    const want = part.format === 'mp3' ? 'MP3' : 'WAV'
    if (kind !== want) throw new HearthError('unsupported_media_type', `${param}: the data is not ${part.format} audio (accepted: wav, mp3)`, param)
  }
  return bytes
}

// Tokens to text without a native call per token, never splitting a UTF-8 character, and stop strings
// that never reach the output, not even their first characters.

/** Where a token's bytes come from. */
export interface PieceSource {
  bytes(token: number): Uint8Array
}

/** Every token's raw bytes, read once from the model. */
export class TokenPieces implements PieceSource {
  readonly #bytes: Uint8Array
  readonly #offsets: Uint32Array

  constructor(pieces: { bytes: Uint8Array; offsets: Uint32Array }) {
    this.#bytes = pieces.bytes
    this.#offsets = pieces.offsets
  }

  get size(): number {
    return this.#offsets.length - 1
  }

  /** the most bytes any token has */
  get longest(): number {
    let most = 0
    for (let t = 0; t < this.size; t++) most = Math.max(most, this.#offsets[t + 1]! - this.#offsets[t]!)
    return most
  }

  bytes(token: number): Uint8Array {
    return this.#bytes.subarray(this.#offsets[token], this.#offsets[token + 1])
  }
}

/**
 * Pieces where the given special tokens show as their text (a chat format's tool-call markers, which its parser
 * must see) while every other special token stays hidden.
 */
export class PreservingPieces implements PieceSource {
  readonly #pieces: PieceSource
  readonly #special: PieceSource
  readonly #preserved: ReadonlySet<number>

  constructor(pieces: PieceSource, special: PieceSource, preserved: ReadonlySet<number>) {
    this.#pieces = pieces
    this.#special = special
    this.#preserved = preserved
  }

  bytes(token: number): Uint8Array {
    return this.#preserved.has(token) ? this.#special.bytes(token) : this.#pieces.bytes(token)
  }
}

/** Streams token bytes into text; bytes of an unfinished UTF-8 character wait for the next token. */
export class TokenText {
  readonly #pieces: PieceSource
  readonly #decoder = new TextDecoder('utf-8')

  constructor(pieces: PieceSource) {
    this.#pieces = pieces
  }

  push(token: number): string {
    return this.#decoder.decode(this.#pieces.bytes(token), { stream: true })
  }

  /** End of stream: an unfinished character is dropped, not turned into U+FFFD. */
  flush(): string {
    const rest = this.#decoder.decode()
    return rest === '\uFFFD' ? '' : rest
  }
}

/**
 * Finds stop strings in streamed text. push() returns what can be emitted now: text that cannot be the
 * start of a stop string. Once a stop string is found, only the text before it is emitted.
 */
export class StopMatcher {
  readonly #stops: string[]
  #held = ''
  stopped: string | null = null

  constructor(stops: string[]) {
    this.#stops = stops.filter((s) => s.length > 0)
  }

  push(text: string): string {
    if (this.stopped !== null) return ''
    if (this.#stops.length === 0) return text
    const buf = this.#held + text
    let at = -1
    for (const s of this.#stops) {
      const i = buf.indexOf(s)
      if (i !== -1 && (at === -1 || i < at)) {
        at = i
        this.stopped = s
      }
    }
    if (at !== -1) {
      this.#held = ''
      return buf.slice(0, at)
    }
    const keep = this.#heldSuffix(buf)
    this.#held = buf.slice(buf.length - keep)
    return buf.slice(0, buf.length - keep)
  }

  /** End of generation without a stop: the held-back text was not a stop string after all. */
  flush(): string {
    const rest = this.stopped === null ? this.#held : ''
    this.#held = ''
    return rest
  }

  // length of the longest suffix of buf that is a proper prefix of some stop string
  #heldSuffix(buf: string): number {
    let best = 0
    for (const s of this.#stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n
          break
        }
      }
    }
    return best
  }
}

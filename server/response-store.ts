// Stored responses for `previous_response_id`: a bounded LRU with a time to live, in memory.
import type { ChatMessage } from '../lib/chat-template.js'

export interface StoredResponse {
  /** the response object as returned to the client */
  response: Record<string, unknown>
  /** the conversation without instructions: earlier turns, this input, this output */
  messages: ChatMessage[]
  storedAt: number
}

export class ResponseStore {
  readonly #max: number
  readonly #ttlMs: number
  readonly #items = new Map<string, StoredResponse>()

  constructor(max: number, ttlMs: number) {
    this.#max = max
    this.#ttlMs = ttlMs
  }

  get size(): number {
    return this.#items.size
  }

  get(id: string): StoredResponse | undefined {
    const item = this.#items.get(id)
    if (!item) return undefined
    if (Date.now() - item.storedAt > this.#ttlMs) {
      this.#items.delete(id)
      return undefined
    }
    // most recently used last
    this.#items.delete(id)
    this.#items.set(id, item)
    return item
  }

  set(id: string, item: Omit<StoredResponse, 'storedAt'>): void {
    if (this.#max <= 0) return
    this.#items.delete(id)
    this.#items.set(id, { ...item, storedAt: Date.now() })
    while (this.#items.size > this.#max) this.#items.delete(this.#items.keys().next().value!)
  }

  delete(id: string): boolean {
    return this.#items.delete(id)
  }
}

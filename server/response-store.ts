// Stored responses for `previous_response_id`, `item_reference` input items and GET/DELETE /v1/responses/{id}, in
// a SQLite file so they outlive a restart or a crash. Bounded by count (the oldest stored go first) and by age,
// both enforced in the database.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { ChatMessage } from '../lib/chat-template.js'
import { HearthError } from '../lib/errors.js'

export interface StoredResponse {
  /** the response object as returned to the client */
  response: Record<string, unknown>
  /** the conversation without instructions: earlier turns, this input, this output (kept whole, as given) */
  messages: ChatMessage[]
  /** ms since the epoch */
  storedAt: number
}

export interface ResponseStoreOptions {
  /** the database file (its folder is created), or ':memory:' to keep responses in this process only */
  path: string
  /** responses kept; past it the oldest stored are dropped; 0 keeps none and opens no file */
  max: number
  /** a response is gone this long after it was stored */
  ttlMs: number
  /** the clock, for tests */
  now?: () => number
}

// bump when the tables change, and migrate from the older versions in open()
// 2: the items table (output item id -> its response), for item_reference
const SCHEMA_VERSION = 2

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY,     -- storage order: the count bound drops the lowest
    id TEXT NOT NULL UNIQUE,
    stored_at INTEGER NOT NULL,  -- ms since the epoch
    value TEXT NOT NULL          -- JSON {response, messages}
  );
  CREATE INDEX IF NOT EXISTS responses_stored_at ON responses (stored_at);
  CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,           -- an output item's id (msg_, fc_, rs_)
    response_seq INTEGER NOT NULL  -- responses.seq of the response that holds it
  );
  CREATE INDEX IF NOT EXISTS items_response_seq ON items (response_seq);
  -- every way a response goes (DELETE, both prunes) takes its items with it
  CREATE TRIGGER IF NOT EXISTS responses_drop_items AFTER DELETE ON responses
    BEGIN DELETE FROM items WHERE response_seq = old.seq; END;
`

// the ids of every stored response's output items (the migration from schema 1)
const INDEX_ITEMS = `
  INSERT OR REPLACE INTO items (id, response_seq)
    SELECT json_extract(o.value, '$.id'), r.seq FROM responses r, json_each(r.value, '$.response.output') o
    WHERE json_extract(o.value, '$.id') IS NOT NULL
`

interface Row {
  value: string
  stored_at: number
}

/**
 * get/set/delete run synchronously on the JS thread and `set` has committed when it returns, so a response the
 * server acknowledges after `set` survives the process being killed. The constructor opens and checks the
 * file and throws an Error naming it when it cannot be used (corrupt, not a database, read-only, newer schema).
 */
export class ResponseStore {
  readonly path: string
  readonly #max: number
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #db: Database.Database | null
  readonly #stmts: ReturnType<typeof prepare> | null

  constructor(options: ResponseStoreOptions) {
    this.path = options.path
    this.#max = options.max
    this.#ttlMs = options.ttlMs
    this.#now = options.now ?? Date.now
    if (this.#max <= 0) {
      this.#db = null
      this.#stmts = null
      return
    }
    this.#db = open(options.path)
    try {
      this.#stmts = prepare(this.#db)
      // a smaller --responses or a long downtime takes effect at once
      this.#stmts.prune(this.#cutoff(), this.#max)
    } catch (err) {
      this.#db.close()
      throw openError(options.path, err)
    }
  }

  /** live (unexpired) responses */
  get size(): number {
    const stmts = this.#statements()
    return stmts ? (stmts.count.get(this.#cutoff()) as number) : 0
  }

  get(id: string): StoredResponse | undefined {
    const row = this.#statements()?.get.get(id, this.#cutoff()) as Row | undefined
    if (!row) return undefined
    const { response, messages } = JSON.parse(row.value, reviveBytes) as Omit<StoredResponse, 'storedAt'>
    return { response, messages, storedAt: row.stored_at }
  }

  /**
   * The output item `id` of a live stored response, as it was returned (for `item_reference` input items), or
   * undefined.
   */
  item(id: string): Record<string, unknown> | undefined {
    const row = this.#statements()?.item.get(id, this.#cutoff()) as Row | undefined
    if (!row) return undefined
    const { response } = JSON.parse(row.value) as Omit<StoredResponse, 'storedAt'>
    return outputItems(response).find((o) => o.id === id)
  }

  /** Stores (or replaces) a response; committed when this returns. Throws internal_error when the write fails. */
  set(id: string, item: Omit<StoredResponse, 'storedAt'>): void {
    const stmts = this.#statements()
    if (!stmts) return
    const value = JSON.stringify({ response: item.response, messages: item.messages }, storeBytes)
    const itemIds = outputItems(item.response).flatMap((o) => (typeof o.id === 'string' ? [o.id] : []))
    try {
      stmts.set(id, this.#now(), value, itemIds, this.#cutoff(), this.#max)
    } catch (err) {
      throw new HearthError('internal_error', `cannot store the response in ${this.path}: ${(err as Error).message}`)
    }
  }

  /** true when a live response was deleted */
  delete(id: string): boolean {
    const row = this.#statements()?.delete.get(id) as { stored_at: number } | undefined
    return row !== undefined && row.stored_at > this.#cutoff()
  }

  /** Closes the database (a clean close also folds the write-ahead log into the file); later calls throw
   * shutting_down. Idempotent. */
  close(): void {
    if (this.#db?.open) this.#db.close()
  }

  // null when nothing is kept (max 0); after close() every call is a 503, as other requests are while draining
  #statements(): ReturnType<typeof prepare> | null {
    if (this.#db && !this.#db.open) throw new HearthError('shutting_down', 'the server is shutting down')
    return this.#stmts
  }

  #cutoff(): number {
    return this.#now() - this.#ttlMs
  }
}

function open(path: string): Database.Database {
  let db: Database.Database
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    db = new Database(path, { timeout: 5000 })
  } catch (err) {
    throw openError(path, err)
  }
  try {
    // Durability: WAL with synchronous=NORMAL. A commit is appended to the -wal file with write() before set()
    // returns, so once the HTTP reply is sent it survives the process dying (kill -9, OOM, a native crash); only
    // an OS crash or power loss may lose the last commits, and never corrupts the file. synchronous=FULL would
    // also cover power loss, but every commit then waits for an fsync on the JS thread, stalling every stream.
    // Measured on the dev VM (loaded, virtual disk) with ~7 KB rows and the count prune, per write, median / mean:
    // WAL+NORMAL 0.06-0.08 / 0.36-0.41 ms (the mean is the auto-checkpoint's fsync every ~1000 pages of log),
    // WAL+FULL 4.7-6.8 / 6.1-7.6 ms, rollback journal+FULL 26 / 27 ms.
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    // reads every page: a damaged file is refused now rather than failing requests later (fast at these sizes)
    const check = db.pragma('quick_check', { simple: true }) as string
    if (check !== 'ok') throw new Error(`the file is damaged (${check.replace(/\s+/g, ' ')})`)
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new Error(`it was written by a newer hearth (schema ${version}, this one knows ${SCHEMA_VERSION})`)
    db.exec(SCHEMA)
    if (version < 2) db.exec(INDEX_ITEMS)
    // a write at start-up: a read-only file or folder is refused now, not at the first stored response
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
    return db
  } catch (err) {
    db.close()
    throw openError(path, err)
  }
}

function openError(path: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message : String(err)
  return new Error(
    `hearth: cannot use the responses database ${path}: ${reason}. ` +
      'Choose another file with --responses-db (HEARTH_RESPONSES_DB), or --responses-db :memory: to keep responses in memory only.',
  )
}

function outputItems(response: Record<string, unknown>): Record<string, unknown>[] {
  const output = response.output
  return Array.isArray(output) ? output.filter((o): o is Record<string, unknown> => o !== null && typeof o === 'object') : []
}

function prepare(db: Database.Database) {
  const pruneExpired = db.prepare('DELETE FROM responses WHERE stored_at <= ?')
  // everything below the newest `max`; the subquery is NULL (nothing deleted) while there are at most `max`
  const pruneOldest = db.prepare('DELETE FROM responses WHERE seq <= (SELECT seq FROM responses ORDER BY seq DESC LIMIT 1 OFFSET ?)')
  // a response stored again is deleted first (its items go with it) and inserted with a new (highest) seq; REPLACE
  // would not fire the delete trigger
  const remove = db.prepare('DELETE FROM responses WHERE id = ?')
  const insert = db.prepare('INSERT INTO responses (id, stored_at, value) VALUES (?, ?, ?)')
  const insertItem = db.prepare('INSERT OR REPLACE INTO items (id, response_seq) VALUES (?, ?)')
  const prune = db.transaction((cutoff: number, max: number) => {
    pruneExpired.run(cutoff)
    pruneOldest.run(max)
  })
  return {
    get: db.prepare('SELECT value, stored_at FROM responses WHERE id = ? AND stored_at > ?'),
    item: db.prepare('SELECT r.value, r.stored_at FROM items i JOIN responses r ON r.seq = i.response_seq WHERE i.id = ? AND r.stored_at > ?'),
    count: db.prepare('SELECT count(*) FROM responses WHERE stored_at > ?').pluck(),
    delete: db.prepare('DELETE FROM responses WHERE id = ? RETURNING stored_at'),
    prune,
    // one transaction: one commit per stored response
    set: db.transaction((id: string, storedAt: number, value: string, itemIds: string[], cutoff: number, max: number) => {
      remove.run(id)
      const seq = insert.run(id, storedAt, value).lastInsertRowid
      for (const itemId of itemIds) insertItem.run(itemId, seq)
      pruneExpired.run(cutoff)
      pruneOldest.run(max)
    }),
  }
}

// media parts carry their file's bytes: kept as base64, and bytes again when read back
function storeBytes(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key]
  return raw instanceof Uint8Array ? { $base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') } : value
}

function reviveBytes(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>
    if (typeof o.$base64 === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$base64, 'base64')
  }
  return value
}

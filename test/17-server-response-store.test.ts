// Stored responses in SQLite: the store's bounds and its start-up checks without a model, then the real server
// keeping them across a clean restart and a kill -9, and the data folder every server writes under.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { dataDir } from '../lib/data-dir.js'
import { ResponseStore } from '../server/response-store.js'
import { loadModel } from './helpers.js'
import { failure, sseEvents, post, startTestServer, tempDir } from './server-helpers.js'

const MODEL = 'austen-kjv-2.6m-f32'
const HOUR = 3600_000

function item(n: number) {
  return { response: { id: `resp_${n}`, object: 'response', n }, messages: [{ role: 'user' as const, content: `turn ${n}` }] }
}

t.test('the data folder', async (t) => {
  t.equal(dataDir({ HEARTH_DATA_DIR: '/srv/h' }, 'linux', '/home/u'), '/srv/h', 'HEARTH_DATA_DIR wins')
  t.equal(dataDir({ HEARTH_DATA_DIR: '/srv/h', XDG_DATA_HOME: '/x' }, 'darwin', '/Users/u'), '/srv/h')
  t.equal(dataDir({}, 'linux', '/home/u'), '/home/u/.local/share/hearth')
  t.equal(dataDir({ XDG_DATA_HOME: '/data' }, 'linux', '/home/u'), '/data/hearth')
  t.equal(dataDir({ XDG_DATA_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.local/share/hearth', 'a relative XDG_DATA_HOME is ignored')
  t.equal(dataDir({}, 'freebsd', '/home/u'), '/home/u/.local/share/hearth')
  t.equal(dataDir({ XDG_DATA_HOME: '/x' }, 'darwin', '/Users/u'), '/Users/u/Library/Application Support/hearth')
  t.equal(dataDir({ APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Roaming\\hearth')
  t.equal(dataDir({}, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Roaming\\hearth')
})

t.test('the store', async (t) => {
  t.test('values come back whole, and outlive the store object', async (t) => {
    const path = join(tempDir(t), 'nested', 'r.sqlite')
    const s = new ResponseStore({ path, max: 10, ttlMs: HOUR })
    // messages may carry tool calls and reasoning: stored as given, not re-shaped
    const messages = [
      { role: 'user', content: 'What is the weather?' },
      { role: 'assistant', content: '', reasoning_content: 'I should call the tool.', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '{"t":21}' },
    ] as unknown as Parameters<ResponseStore['set']>[1]['messages']
    s.set('resp_a', { response: { id: 'resp_a', output: [{ type: 'message' }] }, messages })
    t.same(s.get('resp_a')?.messages, messages)
    t.equal(s.get('resp_missing'), undefined)
    s.close()
    t.ok(existsSync(path), 'the folder is created')
    const again = new ResponseStore({ path, max: 10, ttlMs: HOUR })
    t.teardown(() => again.close())
    t.same(again.get('resp_a')?.response, { id: 'resp_a', output: [{ type: 'message' }] })
    t.equal(again.delete('resp_a'), true)
    t.equal(again.delete('resp_a'), false)
    t.equal(again.get('resp_a'), undefined)
  })

  t.test('the count bound drops the oldest stored, in the database', async (t) => {
    const path = join(tempDir(t), 'r.sqlite')
    const s = new ResponseStore({ path, max: 3, ttlMs: HOUR })
    for (let n = 1; n <= 5; n++) s.set(`r${n}`, item(n))
    t.equal(s.size, 3)
    t.same([1, 2, 3, 4, 5].map((n) => s.get(`r${n}`) !== undefined), [false, false, true, true, true])
    s.set('r3', item(33)) // stored again: now the newest
    s.set('r6', item(6))
    t.same(['r3', 'r4', 'r5', 'r6'].map((id) => s.get(id) !== undefined), [true, false, true, true])
    s.close()
    const rows = new Database(path, { readonly: true })
    t.equal(rows.prepare('SELECT count(*) FROM responses').pluck().get(), 3, 'rows past the bound are deleted, not hidden')
    rows.close()
    const smaller = new ResponseStore({ path, max: 1, ttlMs: HOUR })
    t.equal(smaller.size, 1, 'a smaller bound applies at start-up')
    t.ok(smaller.get('r6'), 'keeping the newest')
    smaller.close()
  })

  t.test('the time to live, in the database', async (t) => {
    const path = join(tempDir(t), 'r.sqlite')
    let now = 1_000_000
    const s = new ResponseStore({ path, max: 10, ttlMs: 1000, now: () => now })
    s.set('old', item(1))
    now += 500
    s.set('young', item(2))
    now += 499
    t.equal(s.size, 2)
    t.equal(s.get('old')?.storedAt, 1_000_000)
    now += 1
    t.equal(s.get('old'), undefined, 'gone once its time is up')
    t.equal(s.delete('old'), false, 'an expired response cannot be deleted either')
    t.ok(s.get('young'))
    s.set('new', item(3))
    s.close()
    const rows = new Database(path, { readonly: true })
    t.same(rows.prepare('SELECT id FROM responses ORDER BY seq').pluck().all(), ['young', 'new'], 'expired rows are deleted on the next write')
    rows.close()
    now += HOUR
    const later = new ResponseStore({ path, max: 10, ttlMs: 1000, now: () => now })
    t.equal(later.size, 0, 'and at start-up')
    later.close()
  })

  t.test('output items are found by id (item_reference) while their response lives; schema 1 files are indexed', async (t) => {
    const path = join(tempDir(t), 'r.sqlite')
    let now = 1_000_000
    const withItems = (n: number, ...ids: string[]) => ({ ...item(n), response: { id: `resp_${n}`, output: ids.map((id) => ({ id, type: 'message', n })) } })
    const s = new ResponseStore({ path, max: 2, ttlMs: 1000, now: () => now })
    s.set('r1', withItems(1, 'msg_a', 'fc_b'))
    t.same(s.item('fc_b'), { id: 'fc_b', type: 'message', n: 1 }, 'the item as it was returned')
    t.equal(s.item('msg_zz'), undefined)
    s.set('r1', withItems(11, 'msg_c'))
    t.equal(s.item('msg_a'), undefined, 'a response stored again replaces its items')
    t.same(s.item('msg_c'), { id: 'msg_c', type: 'message', n: 11 })
    s.set('r2', withItems(2, 'msg_d'))
    s.set('r3', withItems(3, 'msg_e'))
    t.equal(s.item('msg_c'), undefined, 'the count bound takes the items with the response')
    t.ok(s.delete('r2'))
    t.equal(s.item('msg_d'), undefined, 'so does DELETE')
    now += 1000
    t.equal(s.item('msg_e'), undefined, 'and the time to live')
    s.close()
    const rows = new Database(path, { readonly: true })
    t.same(rows.prepare('SELECT id FROM items').pluck().all(), ['msg_e'], 'only the live response has rows until the next write')
    rows.close()

    // a file written by the hearth before items were indexed (schema 1: the responses table only)
    const old = join(tempDir(t), 'v1.sqlite')
    const db = new Database(old)
    db.exec('CREATE TABLE responses (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stored_at INTEGER NOT NULL, value TEXT NOT NULL)')
    db.prepare('INSERT INTO responses (id, stored_at, value) VALUES (?, ?, ?)').run('r9', now, JSON.stringify({ ...withItems(9, 'msg_f', 'rs_g'), messages: [] }))
    db.pragma('user_version = 1')
    db.close()
    const migrated = new ResponseStore({ path: old, max: 10, ttlMs: HOUR, now: () => now })
    t.same(migrated.item('rs_g'), { id: 'rs_g', type: 'message', n: 9 }, 'items stored before the upgrade are found')
    t.ok(migrated.get('r9'))
    migrated.close()
  })

  t.test(':memory: and 0 write no file', async (t) => {
    const dir = tempDir(t)
    const mem = new ResponseStore({ path: ':memory:', max: 2, ttlMs: HOUR })
    mem.set('a', item(1))
    t.ok(mem.get('a'))
    mem.close()
    t.throws(() => mem.get('a'), { code: 'shutting_down' }, 'a closed store answers 503, not a crash')
    const none = new ResponseStore({ path: join(dir, 'r.sqlite'), max: 0, ttlMs: HOUR })
    none.set('a', item(1))
    t.equal(none.get('a'), undefined)
    t.notOk(existsSync(join(dir, 'r.sqlite')), '--responses 0 opens nothing')
  })

  t.test('files it cannot use are refused at start-up, naming the file and the way out', async (t) => {
    const dir = tempDir(t)
    const open = (path: string) => new ResponseStore({ path, max: 10, ttlMs: HOUR })
    const way = /--responses-db/
    const text = join(dir, 'notes.txt')
    writeFileSync(text, 'these are not the pages of a database\n'.repeat(200))
    t.throws(() => open(text), { message: new RegExp(`cannot use the responses database ${text}: file is not a database`) })
    t.throws(() => open(text), { message: way })
    t.throws(() => open(dir), { message: /unable to open database file/ }, 'a folder')
    t.throws(() => open(join(text, 'r.sqlite')), { message: /cannot use the responses database/ }, 'under a file')

    const damaged = join(dir, 'damaged.sqlite')
    const s = open(damaged)
    for (let n = 0; n < 50; n++) s.set(`r${n}`, { ...item(n), response: { pad: 'x'.repeat(3000) } })
    s.close()
    const bytes = readFileSync(damaged)
    bytes.fill(0x5a, 2 * 4096, 3 * 4096) // a b-tree page in the middle
    writeFileSync(damaged, bytes)
    t.throws(() => open(damaged), { message: /the file is damaged/ })

    const newer = join(dir, 'newer.sqlite')
    const db = new Database(newer)
    db.pragma('user_version = 99')
    db.close()
    t.throws(() => open(newer), { message: /written by a newer hearth \(schema 99/ })

    if (process.getuid?.() === 0) {
      t.comment('running as root: file permissions do not stop writes, read-only case skipped')
    } else {
      const ro = join(dir, 'ro')
      mkdirSync(ro, { mode: 0o555 })
      t.throws(() => open(join(ro, 'r.sqlite')), { message: /cannot use the responses database/ }, 'a read-only folder')
    }
  })
})

t.test('the real server', async (t) => {
  const local = await loadModel(t, { parallel: 1 })
  const prompt = async (messages: { role: 'user' | 'assistant'; content: string }[]) => (await local.chatPrompt(messages)).length

  t.test('stored responses survive a restart and continue', async (t) => {
    const db = join(tempDir(t), 'responses.sqlite')
    const first = await startTestServer(t, ['--responses-db', db])
    const r = await first.client.responses.create({ model: MODEL, input: 'Who is Mr. Darcy?', max_output_tokens: 8, temperature: 0 })
    t.same(await first.stop('SIGTERM'), { code: 0, signal: null }, 'a clean exit')

    const second = await startTestServer(t, ['--responses-db', db])
    const stored = await second.client.responses.retrieve(r.id)
    t.same(stored, r, 'the same response after the restart')
    const next = await second.client.responses.create({ model: MODEL, previous_response_id: r.id, input: 'And Elizabeth?', max_output_tokens: 4, temperature: 0 })
    const conversation = [
      { role: 'user' as const, content: 'Who is Mr. Darcy?' },
      { role: 'assistant' as const, content: r.output_text },
      { role: 'user' as const, content: 'And Elizabeth?' },
    ]
    t.equal(next.usage!.input_tokens, await prompt(conversation), 'the conversation stored before the restart is continued')
    t.ok(existsSync(db))
    t.notOk(existsSync(join(second.dataDir, 'responses.sqlite')), 'an explicit --responses-db is used instead of the data folder')
  })

  t.test('an acknowledged response survives kill -9', async (t) => {
    const dataDir = tempDir(t)
    const first = await startTestServer(t, [], { HEARTH_DATA_DIR: dataDir })
    const plain = await first.client.responses.create({ model: MODEL, input: 'Tell me of Emma.', max_output_tokens: 6, temperature: 0 })
    const streamed = await post(`${first.baseURL}/responses`, { model: MODEL, input: 'In the beginning', max_output_tokens: 6, temperature: 0, stream: true })
    t.same(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' }, 'killed at once, without a chance to close the database')
    const done = sseEvents(streamed.text).find((e) => e.event === 'response.incomplete' || e.event === 'response.completed')
    const streamedId = (JSON.parse(done!.data) as { response: { id: string } }).response.id
    t.ok(existsSync(join(dataDir, 'responses.sqlite')), 'the default file is in the data folder')

    const second = await startTestServer(t, [], { HEARTH_DATA_DIR: dataDir })
    t.same(await second.client.responses.retrieve(plain.id), plain)
    t.equal((await second.client.responses.retrieve(streamedId)).id, streamedId, 'a streamed response is stored before its last event')
    const next = await second.client.responses.create({ model: MODEL, previous_response_id: plain.id, input: 'Go on.', max_output_tokens: 2 })
    t.equal(next.previous_response_id, plain.id)
  })

  t.test('--responses bounds the count; DELETE removes from the file', async (t) => {
    const { client } = await startTestServer(t, ['--responses', '2'])
    const ids: string[] = []
    for (const input of ['One', 'Two', 'Three']) ids.push((await client.responses.create({ model: MODEL, input, max_output_tokens: 1 })).id)
    t.match(await failure(client.responses.retrieve(ids[0]!)), { status: 404, code: 'response_not_found' }, 'the oldest went')
    t.equal((await client.responses.retrieve(ids[2]!)).id, ids[2])
    await client.responses.delete(ids[2]!)
    t.match(await failure(client.responses.retrieve(ids[2]!)), { status: 404 })
  })

  t.test('--responses-db :memory: keeps them for this process only', async (t) => {
    const dataDir = tempDir(t)
    const first = await startTestServer(t, ['--responses-db', ':memory:'], { HEARTH_DATA_DIR: dataDir })
    const r = await first.client.responses.create({ model: MODEL, input: 'Hello', max_output_tokens: 2 })
    t.equal((await first.client.responses.retrieve(r.id)).id, r.id)
    await first.stop('SIGTERM')
    t.notOk(existsSync(join(dataDir, 'responses.sqlite')), 'no file')
    const second = await startTestServer(t, ['--responses-db', ':memory:'], { HEARTH_DATA_DIR: dataDir })
    t.match(await failure(second.client.responses.retrieve(r.id)), { status: 404 })
  })

  t.test('a database it cannot use stops the start with a clear error', async (t) => {
    const db = join(tempDir(t), 'broken.sqlite')
    writeFileSync(db, 'not sqlite\n'.repeat(500))
    const err = (await failure(startTestServer(t, ['--responses-db', db]))) as Error
    t.match(err.message, /server exited with 1/)
    t.match(err.message, new RegExp(`hearth: cannot use the responses database ${db}: file is not a database`))
    t.notMatch(err.message, /at .*\.js:\d+/, 'a message, not a stack trace')
  })
})

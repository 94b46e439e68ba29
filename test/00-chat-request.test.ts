// Chat request logic without a model: which turns truncation drops.
import t from 'tap'
import { dropOldestTurn } from '../lib/chat.js'
import type { ChatMessage } from '../lib/chat-template.js'

t.test('truncation drops the oldest turn, a tool call with its results, never system messages or the last turn', async (t) => {
  const history: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'one' },
    { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }, { id: 'c2', name: 'f', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'c1', content: 'r1' },
    { role: 'tool', toolCallId: 'c2', content: 'r2' },
    { role: 'user', content: 'two' },
  ]
  const a = dropOldestTurn(history)!
  t.same(a.map((m) => m.content), ['Be brief.', null, 'r1', 'r2', 'two'])
  const b = dropOldestTurn(a)!
  t.same(b.map((m) => m.content), ['Be brief.', 'two'], 'the calls went with their results')
  t.equal(dropOldestTurn(b), null, 'the last turn stays')
  t.equal(dropOldestTurn([{ role: 'user', content: 'only' }]), null)
})

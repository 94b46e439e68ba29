// Chat request logic without a model: which turns truncation drops.
import t from 'tap'
import { callAtOnce, dropOldestTurn, oneCall, shortCallIds } from '../lib/chat.js'
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

t.test('a required call comes at once: the free text llama.cpp allows before the call marker is taken out', async (t) => {
  const g = 'root ::= "<|im_start|>assistant\\n" space until-161? tool-calls\nuntil-161 ::= ([^<] | "<" [^t])*\ntool-calls ::= "<tool_call>" x'
  t.equal(callAtOnce(g), 'root ::= "<|im_start|>assistant\\n" space tool-calls\nuntil-161 ::= ([^<] | "<" [^t])*\ntool-calls ::= "<tool_call>" x')
  const thinking = 'root ::= reasoning? until-7? tool-calls'
  t.equal(callAtOnce(thinking), 'root ::= reasoning? tool-calls', 'thinking before the call stays')
  t.equal(callAtOnce('root ::= tool-calls'), 'root ::= tool-calls', 'another shape is left as it is')
})

t.test('parallel_tool_calls false: the per-call rule of Qwen-style templates allows one call, not a run of them', async (t) => {
  const required = 'root ::= "<|im_start|>assistant\\n" space tool-calls\ntool-call ::= "<tool_call>\\n" space x space "</tool_call>"\ntool-calls ::= (tool-call space)+'
  t.equal(oneCall(required), required.replace('tool-calls ::= (tool-call space)+', 'tool-calls ::= tool-call space'))
  const auto = 'root ::= tool-call | tool-calls\ntool-calls ::= (tool-call? space)+'
  t.equal(oneCall(auto), 'root ::= tool-call | tool-calls\ntool-calls ::= tool-call space')
  const mistral = 'root ::= space tool-call\ntool-call ::= "[TOOL_CALLS]" space "[" space x space "]" space ""'
  t.equal(oneCall(mistral), mistral, 'a grammar already limited to one call is left as it is')
})

t.test('tool call ids a template refuses become nine hex digits of their hash, the same for a call and its result', async (t) => {
  const messages = [
    { role: 'user', content: 'x' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_0123456789abcdef01234567', name: 'f', arguments: '{}' }, { id: 'A1b2C3d4E', name: 'f', arguments: '{}' }] },
    { role: 'tool', content: 'r1', toolCallId: 'call_0123456789abcdef01234567' },
    { role: 'tool', content: 'r2', toolCallId: 'A1b2C3d4E' },
  ]
  const short = shortCallIds(messages)!
  const id = short[1]!.toolCalls![0]!.id!
  t.match(id, /^[0-9a-f]{9}$/)
  t.equal(short[2]!.toolCallId, id, 'the result still answers its call')
  t.equal(short[1]!.toolCalls![1]!.id, 'A1b2C3d4E', 'an id of nine letters and digits stays')
  t.equal(short[3], messages[3], 'and so does its message')
  t.same(shortCallIds(messages), short, 'the same every time: a conversation keeps its prompt prefix')
  t.equal(shortCallIds([messages[0]!, messages[3]!]), null, 'nothing to change')
})

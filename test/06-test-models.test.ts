// The test models (`npm run test-models`): each family's file loads, carries its real chat template, tokenizes
// the family's special tokens as the real tokenizer does, ends generation on the real ids, and generates; the
// cache makes a file once and never leaves a half file.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Model, type ChatMessage, type Tool } from '../lib/index.js'
import { toNativeMessages } from '../lib/chat-template.js'
import { templatesDir } from './models/chat-model.js'
import { ensureTestModel, ensureTestModels, TEST_MODELS, type TestModelFile } from './models/make-test-models.js'

interface FamilyExpectation {
  file: TestModelFile
  template: string
  /** parsed only as special text, rendered only when asked (CONTROL) */
  control: string[]
  /** always parsed and rendered as text (USER_DEFINED, or turned into it by llama.cpp at load) */
  userDefined: string[]
  /** texts the real tokenizer has no added (special) token for */
  notSpecial: string[]
  bos: string
  eos: string
  /** null: the real GGUF has no end-of-turn token */
  eot: string | null
  eog: string[]
  addBos: boolean
  /** a chat whose rendering holds every text of `inPrompt` */
  messages: ChatMessage[]
  options: { tools?: Tool[]; addGenerationPrompt?: boolean; enableThinking?: boolean }
  inPrompt: string[]
}

const tools: Tool[] = [
  {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
]
// Mistral's template wants 9-character call ids
const toolTurns: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: '', toolCalls: [{ id: 'call12345', name: 'get_weather', arguments: '{"city": "Paris"}' }] },
  { role: 'tool', toolCallId: 'call12345', content: '{"temp": 20}' },
  { role: 'assistant', content: 'It is 20 degrees.' },
]
const toolChat: ChatMessage[] = [...toolTurns, { role: 'user', content: 'Thanks!' }]

const qwenControl = [
  '<|endoftext|>',
  '<|im_start|>',
  '<|im_end|>',
  '<|object_ref_start|>',
  '<|box_start|>',
  '<|vision_start|>',
  '<|image_pad|>',
  '<|fim_prefix|>',
  '<|fim_pad|>',
  '<|repo_name|>',
  '<|file_sep|>',
]
const qwenEog = ['<|endoftext|>', '<|im_end|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>']

const FAMILIES: FamilyExpectation[] = [
  {
    file: 'qwen2.5.gguf',
    template: 'Qwen-Qwen2.5-7B-Instruct.jinja',
    control: qwenControl,
    userDefined: ['<tool_call>', '</tool_call>'],
    notSpecial: ['<tool_response>', '<think>', '</think>'],
    bos: '<|endoftext|>',
    eos: '<|im_end|>',
    eot: '<|im_end|>',
    eog: qwenEog,
    addBos: false,
    messages: toolChat,
    options: { tools },
    inPrompt: ['<|im_start|>', '<|im_end|>', '<tool_call>', '</tool_call>'],
  },
  {
    file: 'llama-3.x.gguf',
    template: 'meta-llama-Llama-3.1-8B-Instruct.jinja',
    control: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>', '<|eot_id|>', '<|python_tag|>'],
    userDefined: [],
    notSpecial: ['<|im_start|>', '<s>'],
    bos: '<|begin_of_text|>',
    eos: '<|eot_id|>',
    eot: '<|eot_id|>',
    eog: ['<|end_of_text|>', '<|eom_id|>', '<|eot_id|>'],
    addBos: true,
    messages: toolChat,
    options: { tools },
    inPrompt: ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  },
  {
    file: 'mistral.gguf',
    template: 'mistralai-Mistral-Nemo-Instruct-2407.jinja',
    control: ['<s>', '</s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_RESULTS]', '[/TOOL_RESULTS]', '[TOOL_CALLS]'],
    userDefined: [],
    notSpecial: ['<|im_end|>', '<|eot_id|>'],
    bos: '<s>',
    eos: '</s>',
    eot: null,
    eog: ['</s>'],
    addBos: true,
    messages: toolChat,
    options: { tools },
    inPrompt: ['<s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_CALLS]', '</s>', '[TOOL_RESULTS]', '[/TOOL_RESULTS]'],
  },
  {
    file: 'gpt-oss.gguf',
    template: 'openai-gpt-oss-120b.jinja',
    control: ['<|startoftext|>', '<|endoftext|>', '<|return|>', '<|call|>'],
    // llama.cpp renders these as text for gpt-oss, and <|end|> stops being an end-of-generation token
    userDefined: ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>', '<|end|>'],
    notSpecial: ['<|im_end|>', '<think>'],
    bos: '<|startoftext|>',
    eos: '<|return|>',
    eot: '<|endoftext|>',
    eog: ['<|endoftext|>', '<|return|>', '<|call|>'],
    addBos: false,
    // an assistant turn last, without a generation prompt (llama.cpp's chat layer closes it with <|end|>)
    messages: toolTurns,
    options: { tools, addGenerationPrompt: false },
    inPrompt: ['<|start|>', '<|message|>', '<|end|>', '<|channel|>', '<|call|>'],
  },
  {
    file: 'qwen3.gguf',
    template: 'Qwen-Qwen3-0.6B.jinja',
    control: qwenControl,
    userDefined: ['<tool_call>', '</tool_call>', '<tool_response>', '</tool_response>', '<think>', '</think>'],
    notSpecial: ['<|eot_id|>'],
    bos: '<|endoftext|>',
    eos: '<|im_end|>',
    eot: '<|im_end|>',
    eog: qwenEog,
    addBos: false,
    messages: toolChat,
    // with thinking off the generation prompt holds an empty <think></think>
    options: { tools, enableThinking: false },
    inPrompt: ['<|im_start|>', '<|im_end|>', '<tool_call>', '</tool_call>', '<tool_response>', '</tool_response>', '<think>', '</think>'],
  },
]

const modelOptions = { threads: 1, parallel: 2, contextSize: 1024 }

const count = (haystack: string, needle: string) => haystack.split(needle).length - 1

t.test('every family has a test model and nothing else is listed', async (t) => {
  // besides the chat families, the vision pair (test/24-server-images.test.ts) and the encoder (test/25)
  const others = ['vision-mmproj.gguf', 'vision-text.gguf', 'bert-embed.gguf']
  t.same(TEST_MODELS.map((m) => m.file).sort(), [...FAMILIES.map((f) => f.file), ...others].sort())
})

for (const family of FAMILIES) {
  t.test(family.file, async (t) => {
    const model = await Model.load(await ensureTestModel(family.file), modelOptions)
    t.teardown(() => model.dispose())
    const one = (text: string) => {
      const tokens = model.tokenize(text, { addSpecial: false, parseSpecial: true })
      t.equal(tokens.length, 1, `${text} is one token`)
      return tokens[0]!
    }

    t.equal(model.facts.architecture, 'llama')
    t.equal(model.facts.chatTemplate, readFileSync(join(templatesDir, family.template), 'utf8'), 'carries the real template')
    t.equal(model.chatTemplates.origin, 'model', "the model's own template is used")

    for (const text of family.control) {
      const id = one(text)
      t.ok(model.tokenize(text, { addSpecial: false }).length > 1, `${text} is special text: plain text does not make it`)
      t.equal(model.detokenize([id]), '', `${text} is not rendered as plain text`)
      t.equal(model.detokenize([id], true), text, `${text} is rendered when special tokens are asked for`)
    }
    for (const text of family.userDefined) {
      const id = one(text)
      t.same([...model.tokenize(text, { addSpecial: false })], [id], `${text} is parsed from plain text too`)
      t.equal(model.detokenize([id]), text, `${text} is rendered as text`)
    }
    for (const text of family.notSpecial) {
      t.ok(model.tokenize(text, { addSpecial: false, parseSpecial: true }).length > 1, `${text} is no special token of this family`)
    }

    t.equal(model.facts.bos, one(family.bos), `BOS is ${family.bos}`)
    t.equal(model.facts.eos, one(family.eos), `EOS is ${family.eos}`)
    t.equal(model.facts.eot, family.eot === null ? -1 : one(family.eot), `EOT is ${family.eot}`)
    t.equal(model.facts.addBos, family.addBos)
    t.same([...model.eog].sort((a, b) => a - b), family.eog.map(one).sort((a, b) => a - b), `end of generation: ${family.eog.join(' ')}`)

    const { tools: given, ...rest } = family.options
    const tools = given?.map((x) => ({ name: x.name, description: x.description ?? '', parameters: JSON.stringify(x.parameters) }))
    const rendered = (await model.chatTemplates.apply({ messages: toNativeMessages(family.messages), ...rest, ...(tools ? { tools } : {}) })).prompt
    const prompt = await model.chatTokens(rendered)
    // llama.cpp's chat layer leaves a leading BOS out of the rendered text when the tokenizer adds it
    const text = (family.addBos ? family.bos : '') + rendered
    t.equal(model.detokenize(prompt, true), text, 'the prompt tokens render back to the template output')
    for (const marker of family.inPrompt) {
      const id = one(marker)
      const n = count(text, marker)
      t.ok(n > 0, `the rendered chat holds ${marker}`)
      t.equal(prompt.filter((x) => x === id).length, n, `every ${marker} in the chat is the one token`)
    }
  })
}

t.test('generation on every test model: random text, no special token unless forced', async (t) => {
  const target = '{"city": "Zürich", "note": "naïve € 日本", "n": [1, -2.5e3]}'
  for (const family of FAMILIES) {
    const model = await Model.load(await ensureTestModel(family.file), modelOptions)
    t.teardown(() => model.dispose())
    const specials = new Set([...family.control, ...family.userDefined].map((s) => model.tokenize(s, { addSpecial: false, parseSpecial: true })[0]))
    const prompt = await model.chatPrompt([{ role: 'user', content: 'Tell me a story.' }])
    for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 7 }]) {
      const seq = model.generate(prompt, { ...sampling, maxTokens: 100 })
      let text = ''
      for await (const piece of seq) text += piece
      const result = await seq.result
      t.equal(result.finishReason, 'length', `${family.file} T=${sampling.temperature}: runs to max_tokens`)
      t.equal(result.completionTokens, 100)
      t.ok(text.trim().length > 0, `${family.file}: writes text`)
      t.notOk(result.tokens.some((x) => specials.has(x)), `${family.file}: no special token of its own accord`)
    }
    // byte fallback: a grammar can force text outside the word pieces
    const seq = model.generate(prompt, { temperature: 0, maxTokens: 200, grammar: `root ::= ${JSON.stringify(target)}` })
    let text = ''
    for await (const piece of seq) text += piece
    t.equal(text, target, `${family.file}: a grammar forces any JSON`)
    t.equal((await seq.result).finishReason, 'eos', 'and ends when the grammar is complete')
    // an end-of-generation token is one logit bias away
    const eos = model.facts.eos
    const ended = await model.generate(prompt, { temperature: 0, maxTokens: 10, logitBias: { [eos]: 100 } }).result
    t.same([ended.finishReason, ended.completionTokens], ['eos', 1], `${family.file}: EOS ends generation`)
  }
})

t.test('a second ensureTestModels() keeps every file', async (t) => {
  const first = await ensureTestModels()
  const before = Object.values(first).map((p) => statSync(p))
  const made: string[] = []
  const second = await ensureTestModels(undefined, { onMade: (file) => made.push(file) })
  t.same(second, first)
  t.same(made, [], 'nothing was made')
  Object.values(second).forEach((p, i) => {
    const after = statSync(p)
    t.same([after.ino, after.mtimeMs, after.size], [before[i]!.ino, before[i]!.mtimeMs, before[i]!.size], `${p} was not rewritten`)
  })
})

t.test('the cache remakes missing, partial and stale files and nothing else', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-test-models-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = 'mistral.gguf'
  const made: string[] = []
  const options = { dir, onMade: (f: string) => made.push(f) }
  const reference = readFileSync(await ensureTestModel(file))

  // two concurrent calls in one process make the file once
  const [a, b] = await Promise.all([ensureTestModel(file, options), ensureTestModel(file, options)])
  t.equal(a, join(dir, file))
  t.equal(b, a)
  t.same(made, [file])
  t.ok(readFileSync(a).equals(reference), 'the same bytes as the shared cache: files are reproducible')

  // an interrupted run: a file without its stamp (as if renamed just before the process died), temporary files
  writeFileSync(a, reference.subarray(0, reference.length >> 1))
  const stamp = readFileSync(`${a}.recipe`, 'utf8')
  writeFileSync(`${a}.recipe`, 'stale')
  const abandoned = `${a}.999999999.0badf00d.tmp.partial`
  const live = `${a}.${process.ppid}.0badf00d.tmp`
  writeFileSync(abandoned, 'left by a dead process')
  writeFileSync(live, 'being written by a live process')
  made.length = 0
  await ensureTestModel(file, options)
  t.same(made, [file], 'a stale stamp remakes the file')
  t.ok(readFileSync(a).equals(reference), 'the half file was replaced')
  t.equal(readFileSync(`${a}.recipe`, 'utf8'), stamp)
  t.notOk(existsSync(abandoned), "a dead process's temporary file is removed")
  t.ok(existsSync(live), "a live process's temporary file is left alone")

  made.length = 0
  await ensureTestModel(file, options)
  t.same(made, [], 'a complete file is kept')
  t.same(readdirSync(dir).sort(), [file, `${file}.recipe`, `${file}.${process.ppid}.0badf00d.tmp`].sort(), 'nothing else was left behind')

  // a file whose stamp is missing counts as incomplete
  rmSync(`${a}.recipe`)
  made.length = 0
  await ensureTestModel(file, options)
  t.same(made, [file])
})

t.test('an unknown file name is an error naming the known ones', async (t) => {
  await t.rejects(ensureTestModel('nope.gguf' as TestModelFile), /unknown test model nope\.gguf; one of qwen2\.5\.gguf, /)
})

// The chat families the test models copy: each real tokenizer's named special tokens, typed as
// convert_hf_to_gguf.py types them (CONTROL for tokens the tokenizer marks special or that look like <|...|>,
// USER_DEFINED for other added tokens), the ids its GGUF names, and the chat template it carries (read from
// llama.cpp's copy at generation time; hearth never commits template text). Reserved and unused placeholder
// tokens are left out: they change nothing a test can see.
import { TokenType, type SpecialToken } from '../../bench/synthetic-vocab.js'

export interface ChatFamily {
  /** file name in the cache folder */
  file: string
  /** the real model whose tokenizer and template the file carries */
  realName: string
  /** file in deps/llama.cpp/models/templates */
  template: string
  /** the real tokenizer's named special tokens, in its id order; they take ids 0, 1, ... here */
  specials: readonly SpecialToken[]
  bos: string
  eos: string
  /**
   * Set where llama.cpp would otherwise guess it from token texts: the guess walks a hash map, so a vocabulary
   * with two candidates (<|im_end|> and <|endoftext|>) gets either one.
   */
  eot?: string
  eom?: string
  pad?: string
  /** SentencePiece's default unknown id is 0; only Mistral's tokenizer has a real <unk> */
  unk?: string
  /** tokenizer.ggml.add_bos_token as the real GGUF has it */
  addBos: boolean
}

const control = (...texts: string[]): SpecialToken[] => texts.map((text) => ({ text, type: TokenType.CONTROL }))
const userDefined = (...texts: string[]): SpecialToken[] => texts.map((text) => ({ text, type: TokenType.USER_DEFINED }))

// Qwen2.5's added tokens 151643..151664. <tool_call> is not marked special and does not look special, so it
// is USER_DEFINED (always parsed, rendered as text); the FIM tokens are not marked special but look it.
const QWEN25_SPECIALS = [
  ...control(
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|object_ref_start|>',
    '<|object_ref_end|>',
    '<|box_start|>',
    '<|box_end|>',
    '<|quad_start|>',
    '<|quad_end|>',
    '<|vision_start|>',
    '<|vision_end|>',
    '<|vision_pad|>',
    '<|image_pad|>',
    '<|video_pad|>',
  ),
  ...userDefined('<tool_call>', '</tool_call>'),
  ...control('<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>'),
]

export const CHAT_FAMILIES = [
  {
    file: 'qwen2.5.gguf',
    realName: 'Qwen2.5-7B-Instruct',
    template: 'Qwen-Qwen2.5-7B-Instruct.jinja',
    specials: QWEN25_SPECIALS,
    bos: '<|endoftext|>',
    eos: '<|im_end|>',
    eot: '<|im_end|>',
    pad: '<|endoftext|>',
    addBos: false,
  },
  {
    file: 'llama-3.x.gguf',
    realName: 'Llama-3.1-8B-Instruct',
    template: 'meta-llama-Llama-3.1-8B-Instruct.jinja',
    // 128000..128010 without the reserved ones; all marked special
    specials: control(
      '<|begin_of_text|>',
      '<|end_of_text|>',
      '<|finetune_right_pad_id|>',
      '<|start_header_id|>',
      '<|end_header_id|>',
      '<|eom_id|>',
      '<|eot_id|>',
      '<|python_tag|>',
    ),
    bos: '<|begin_of_text|>',
    eos: '<|eot_id|>',
    eot: '<|eot_id|>',
    eom: '<|eom_id|>',
    addBos: true,
  },
  {
    file: 'mistral.gguf',
    realName: 'Mistral-Nemo-Instruct-2407',
    template: 'mistralai-Mistral-Nemo-Instruct-2407.jinja',
    // tekken's control tokens 0..9, at the same ids as in the real vocabulary
    specials: control(
      '<unk>',
      '<s>',
      '</s>',
      '[INST]',
      '[/INST]',
      '[AVAILABLE_TOOLS]',
      '[/AVAILABLE_TOOLS]',
      '[TOOL_RESULTS]',
      '[/TOOL_RESULTS]',
      '[TOOL_CALLS]',
    ),
    bos: '<s>',
    eos: '</s>',
    unk: '<unk>',
    addBos: true,
  },
  {
    file: 'gpt-oss.gguf',
    realName: 'gpt-oss-20b',
    template: 'openai-gpt-oss-120b.jinja',
    // o200k_harmony's 199998..200012 without the reserved ones. llama.cpp itself turns <|channel|>,
    // <|message|>, <|start|>, <|constrain|> and <|end|> into USER_DEFINED tokens at load time, as it does
    // for the real file, so they render as text and <|end|> does not end generation.
    specials: control(
      '<|startoftext|>',
      '<|endoftext|>',
      '<|return|>',
      '<|constrain|>',
      '<|channel|>',
      '<|start|>',
      '<|end|>',
      '<|message|>',
      '<|call|>',
    ),
    bos: '<|startoftext|>',
    eos: '<|return|>',
    eot: '<|endoftext|>',
    pad: '<|endoftext|>',
    addBos: false,
  },
  {
    file: 'qwen3.gguf',
    realName: 'Qwen3-0.6B',
    template: 'Qwen-Qwen3-0.6B.jinja',
    // Qwen2.5's, then 151665..151668, none marked special
    specials: [...QWEN25_SPECIALS, ...userDefined('<tool_response>', '</tool_response>', '<think>', '</think>')],
    bos: '<|endoftext|>',
    eos: '<|im_end|>',
    eot: '<|im_end|>',
    pad: '<|endoftext|>',
    addBos: false,
  },
] as const satisfies readonly ChatFamily[]

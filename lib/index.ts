// hearth's library: load a GGUF model, stream generations through the continuous-batching scheduler,
// render chat templates, embed text. The server (hearth/server) is built on exactly this API.
export { Model, defaultModelPath } from './model.js'
export type { ModelOptions, GenerateOptions, TokenizeOptions, EmbeddingResult } from './model.js'
export { Sequence } from './sequence.js'
export type { FinishReason, SequenceChunk, SequenceResult, SequenceListener, TokenInfo, TokenLogprob } from './sequence.js'
export { samplingParams, defaultSampling } from './params.js'
export type { SamplingParams, SamplingInput } from './params.js'
export { ChatTemplate, FALLBACK_CHAT_TEMPLATE } from './chat-template.js'
export type { ChatMessage, ChatContentPart, ChatRenderOptions, Tool, ToolCall } from './chat-template.js'
export { HearthError, errorCodes, toHearthError } from './errors.js'
export type { ErrorCode, ErrorType } from './errors.js'
export type { SchedulerStats } from './scheduler.js'
export { native } from './native.js'

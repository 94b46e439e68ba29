// One registry of error codes for the library, the native addon and the server. Each code has the HTTP
// status and OpenAI error type the server answers with; `HearthError` carries all three.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  /** a server hearth calls for the request (a remote MCP server) failed: OpenAI's type for it */
  | 'external_connector_error'

interface CodeInfo {
  status: number
  type: ErrorType
  description: string
}

export const errorCodes = {
  // request problems (400)
  invalid_parameter: { status: 400, type: 'invalid_request_error', description: 'a parameter is missing, of the wrong type or out of range' },
  invalid_json: { status: 400, type: 'invalid_request_error', description: 'the body is not valid JSON' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', description: 'prompt plus max_tokens does not fit the context' },
  invalid_token: { status: 400, type: 'invalid_request_error', description: 'a token id is outside the vocabulary' },
  invalid_grammar: { status: 400, type: 'invalid_request_error', description: 'a grammar does not parse' },
  grammar_too_complex: { status: 400, type: 'invalid_request_error', description: 'a grammar passes a size, nesting, rule, repetition or ambiguity limit (lib/grammar-limits.ts)' },
  invalid_input: { status: 400, type: 'invalid_request_error', description: 'an input cannot be processed as given' },
  unknown_parameter: { status: 400, type: 'invalid_request_error', description: 'a request field this endpoint does not know (never silently ignored)' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error', description: 'a parameter this model or server does not support' },
  bad_request: { status: 400, type: 'invalid_request_error', description: 'the HTTP request is malformed (request line, headers, Content-Length, chunked framing)' },
  unsupported_schema: { status: 400, type: 'invalid_request_error', description: 'a valid JSON schema that cannot become a grammar as asked: past a size limit, or (strict) a keyword the grammar would not enforce' },
  invalid_json_schema: { status: 400, type: 'invalid_request_error', description: 'a JSON schema (response format or tool parameters) is not JSON, or not one llama.cpp can turn into a grammar' },
  invalid_media: { status: 400, type: 'invalid_request_error', description: 'a media part (image or audio) cannot be read: corrupt, truncated, not valid base64, or an image with more pixels than allowed' },
  unsupported_media_type: { status: 400, type: 'invalid_request_error', description: 'a media part in a format hearth does not read (the message lists the accepted ones)' },
  model_not_multimodal: { status: 400, type: 'invalid_request_error', description: 'a media part for a model without a projector for it (--mmproj loads one)' },
  too_many_media: { status: 400, type: 'invalid_request_error', description: 'more media parts in one request than --max-media-per-request' },
  remote_media_disabled: { status: 400, type: 'invalid_request_error', description: 'a media part with an http(s) URL while --allow-remote-media is off' },
  fetch_not_allowed: { status: 400, type: 'invalid_request_error', description: 'a URL hearth would fetch (an MCP server) is refused by the outbound fetch policy: not http(s), or a loopback, private, link-local or reserved address, or a host outside --fetch-allow' },
  mcp_not_enabled: { status: 400, type: 'invalid_request_error', description: 'an mcp tool came and remote MCP is off (start with --allow-mcp)' },
  mcp_too_many_tools: { status: 400, type: 'invalid_request_error', description: 'an MCP server offers more tools than --mcp-max-tools after allowed_tools' },
  mcp_approval_not_found: { status: 400, type: 'invalid_request_error', description: 'an mcp_approval_response names no approval request of this conversation' },
  fetch_failed: { status: 400, type: 'invalid_request_error', description: 'a URL hearth fetched failed: name resolution, connection, too many redirects, the time cap or the size cap' },
  wrong_model_type: { status: 400, type: 'invalid_request_error', description: 'the model named cannot serve this endpoint (an embedding model asked to generate text)' },
  model_too_large: { status: 400, type: 'invalid_request_error', description: 'loading the model needs more memory than the whole budget (--max-memory)' },
  chat_template_error: { status: 400, type: 'invalid_request_error', description: 'the chat template failed on these messages or options (it raised an error, or no parser or grammar can be built for them)' },
  // authentication (401)
  invalid_api_key: { status: 401, type: 'authentication_error', description: 'missing or wrong bearer token' },
  // refused browser requests (403)
  origin_not_allowed: { status: 403, type: 'invalid_request_error', description: 'a browser request from an origin not allowed by --cors' },
  host_not_allowed: { status: 403, type: 'invalid_request_error', description: 'the Host header names no allowed host (DNS rebinding); see --allowed-hosts' },
  // not found (404)
  model_not_found: { status: 404, type: 'invalid_request_error', description: 'the model is not loaded here, or the model file does not exist' },
  model_not_loaded: { status: 404, type: 'invalid_request_error', description: 'the model is available but not loaded, and JIT loading is off (load it first)' },
  previous_response_not_found: { status: 404, type: 'invalid_request_error', description: 'previous_response_id names no stored response' },
  response_not_found: { status: 404, type: 'invalid_request_error', description: 'no stored response has this id' },
  item_not_found: { status: 404, type: 'invalid_request_error', description: 'an item_reference names no output item of a stored response' },
  not_found: { status: 404, type: 'not_found_error', description: 'no such route' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', description: 'the route exists for another method' },
  request_timeout: { status: 408, type: 'invalid_request_error', description: 'the request head and body did not arrive within --body-timeout' },
  // a server hearth calls for the request failed (424, as OpenAI answers it)
  mcp_server_error: { status: 424, type: 'external_connector_error', description: "a remote MCP server's tools could not be listed: unreachable, not an MCP server, an error, or --mcp-timeout passed" },
  // size (413, 431)
  media_too_large: { status: 413, type: 'invalid_request_error', description: 'a media part larger than --max-media-bytes' },
  request_too_large: { status: 413, type: 'invalid_request_error', description: 'the body is larger than the configured limit' },
  expectation_failed: { status: 417, type: 'invalid_request_error', description: 'an Expect header other than 100-continue' },
  headers_too_large: { status: 431, type: 'invalid_request_error', description: 'too many header lines or too large a request head' },
  // HTTP features not served (501, 505)
  method_not_implemented: { status: 501, type: 'invalid_request_error', description: 'an HTTP method or transfer coding hearth does not serve' },
  http_version_not_supported: { status: 505, type: 'invalid_request_error', description: 'an HTTP version other than 1.0 and 1.1' },
  // load (429 / 503)
  queue_full: { status: 429, type: 'rate_limit_error', description: 'every slot is busy and the wait queue is full' },
  kv_cache_full: { status: 503, type: 'server_error', description: 'the KV cache cannot hold the request now' },
  model_loading: { status: 503, type: 'server_error', description: 'the model is still loading' },
  insufficient_memory: { status: 503, type: 'server_error', description: 'loading the model needs more memory than the budget (--max-memory) has free, and no idle model can make room now' },
  shutting_down: { status: 503, type: 'server_error', description: 'the server is draining for shutdown' },
  // the client went away or cancelled: nothing is sent (499 is what nginx logs for it)
  request_cancelled: { status: 499, type: 'invalid_request_error', description: 'the request was cancelled before it finished' },
  // model files and native failures
  invalid_model: { status: 400, type: 'invalid_request_error', description: 'the file is not a GGUF model' },
  model_load_failed: { status: 500, type: 'server_error', description: 'llama.cpp could not load the model (truncated or unsupported file)' },
  model_disposed: { status: 500, type: 'server_error', description: 'the model was unloaded' },
  model_in_use: { status: 409, type: 'invalid_request_error', description: 'the model still has live contexts' },
  context_failed: { status: 500, type: 'server_error', description: 'llama.cpp could not create a context (out of memory?)' },
  context_disposed: { status: 500, type: 'server_error', description: 'the context was disposed' },
  context_busy: { status: 500, type: 'server_error', description: 'a native call raced a decode step (a bug)' },
  invalid_batch: { status: 500, type: 'server_error', description: 'the scheduler built an invalid batch (a bug)' },
  invalid_sequence: { status: 500, type: 'server_error', description: 'a sequence id outside the context (a bug)' },
  invalid_chat_template: { status: 500, type: 'server_error', description: "the chat template (the model's or the configured override) does not parse" },
  chat_parser_finished: { status: 500, type: 'server_error', description: 'a chat output parser was fed after its final text (a bug)' },
  invalid_options: { status: 400, type: 'invalid_request_error', description: 'native options out of range' },
  state_save_failed: { status: 500, type: 'server_error', description: "a sequence's KV cells could not be saved to host memory (the prompt cache goes without)" },
  state_restore_failed: { status: 500, type: 'server_error', description: 'saved KV cells could not be put back into a sequence (no room in its stream); the prompt is computed instead' },
  projector_load_failed: { status: 500, type: 'server_error', description: 'the multimodal projector (--mmproj) could not be loaded, or does not fit the model' },
  projector_disposed: { status: 500, type: 'server_error', description: 'the projector was unloaded' },
  media_failed: { status: 500, type: 'server_error', description: 'encoding a media item or decoding its embeddings failed' },
  decode_failed: { status: 500, type: 'server_error', description: 'llama_decode failed' },
  sampling_failed: { status: 500, type: 'server_error', description: "sampling one sequence's next token failed (only that sequence ends)" },
  decode_aborted: { status: 500, type: 'server_error', description: 'llama_decode was aborted' },
  tokenize_failed: { status: 500, type: 'server_error', description: 'tokenization failed' },
  quantize_failed: { status: 500, type: 'server_error', description: 'quantization failed' },
  internal_error: { status: 500, type: 'server_error', description: 'an unexpected failure' },
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof errorCodes

export class HearthError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly type: ErrorType
  /** the request parameter at fault, named as on the wire (snake_case), or null */
  readonly param: string | null

  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(message)
    this.name = 'HearthError'
    this.code = code
    this.status = errorCodes[code].status
    this.type = errorCodes[code].type
    this.param = param
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCodes, code)
}

/** Turns anything thrown (native errors carry a `code`) into a HearthError. */
export function toHearthError(err: unknown): HearthError {
  if (err instanceof HearthError) return err
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code
    return new HearthError(isErrorCode(code) ? code : 'internal_error', err.message)
  }
  return new HearthError('internal_error', String(err))
}

export function invalidParam(param: string, message: string): HearthError {
  return new HearthError('invalid_parameter', message, param)
}

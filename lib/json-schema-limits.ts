// The limits every JSON schema is held to before llama.cpp's converter and grammar parser see it (checked by
// lib/json-schema-check.ts). Each was measured against deps/llama.cpp on a 2-core machine: the converter
// (common/json-schema*.cpp) on a thread with a 1 MiB stack, the grammar parser and sampler (src/llama-grammar.cpp)
// with the built-in model's vocabulary. A value past one is refused with `unsupported_schema`, naming the limit.

/** Serialized size. The converter and the grammar are linear in it; 256 KiB is ~64k tokens of schema text. */
export const MAX_SCHEMA_BYTES = 256 * 1024
/**
 * JSON nesting of the schema value. nlohmann's dump and the converter recurse per level (a const nested 9,300
 * deep overflowed a 1 MiB stack); 256 leaves room for the 128 subschema levels below (two JSON levels each).
 */
export const MAX_SCHEMA_JSON_DEPTH = 256
/**
 * Subschema nesting, counted through $ref. The converter used 1.2-2 KiB of C++ stack per level (a 1 MiB stack
 * overflowed at 690 nested objects, 523 nested allOf, 844 levels of chained $ref targets); 128 stays under 256 KiB.
 */
export const MAX_SCHEMA_DEPTH = 128
/** Subschemas the converter visits (OpenAI allows 5,000 properties). It spends 20-40 µs on each (5,000: 0.1-0.2 s). */
export const MAX_SCHEMA_NODES = 5000
/** Distinct $ref strings: each is resolved, built and named once; generated schemas have tens. */
export const MAX_REFS = 500
/** A $ref's length: the converter runs std::regex over it, which recursed per character (3,250 overflowed 1 MiB). */
export const MAX_REF_LENGTH = 1024
/**
 * A property name's UTF-8 bytes: the std::regex over rule names and additionalProperties' key trie recurse per
 * character (1 MiB of stack overflowed at 3,249 and 2,321 characters).
 */
export const MAX_NAME_BYTES = 256
/**
 * Optional properties of one object (additionalProperties counts as one). The converter writes every suffix of
 * the optional list as rules, cubic in their number: 64 took 3 ms, 128 38 ms, 256 196 ms, 800 4.9 s.
 */
export const MAX_OPTIONAL_PROPERTIES = 64
/** Values of one enum (OpenAI's cap too). Each is an alternative the sampler tracks: 5,000 took 100 ms to build. */
export const MAX_ENUM_VALUES = 1000
/** Serialized bytes of one enum's values or one const: each byte is a character element of the grammar. */
export const MAX_ENUM_BYTES = 64 * 1024
/** A pattern's length; real patterns (emails, dates, ids) are well under it. */
export const MAX_PATTERN_LENGTH = 1024
/**
 * One repetition count (minLength, maxLength, a pattern's {m,n}): llama.cpp's grammar parser (MAX_REPETITION_
 * THRESHOLD) refuses a minimum above 2000 and silently drops a maximum above 2000, leaving it unbounded.
 */
export const MAX_REPETITION = 2000
/**
 * minItems/maxItems: the item rule is repeated as ("," space item){n-1}, and the parser refuses a group that
 * creates up to 3 rules times a count above 2000 (a plain maxItems of 2000 already failed): (n-1)·3 ≤ 2000.
 */
export const MAX_ARRAY_ITEMS_BOUND = 667
/**
 * The product of counts of quantifiers nested inside a counted repetition ((a{0,20}){0,20} is 400): the sampler
 * tracks every split of the text among them. Measured per token: (a{0,8}){0,8} 5x a plain pattern,
 * (a{0,20}){0,20} 450x; 16 keeps (x*){0,8}, (x{0,4}){0,4} and ([0-9]{1,3}\.){3} (IPv4: 9).
 */
export const MAX_PATTERN_NESTED_REPETITION = 16
/**
 * All repetitions in the grammar together: the parser makes one rule per repetition; 2,000 took 9-13 ms and
 * 0.45 MB to build for every sequence that samples with it, so 10,000 bounds that at ~60 ms and ~2.5 MB.
 */
export const MAX_GRAMMAR_REPETITIONS = 10_000
/**
 * Bytes of rule names: a nested rule's name is its parent's plus its own (a 256-byte name at depth 64 makes
 * 16 KiB names), so a small deep schema could produce hundreds of megabytes of grammar.
 */
export const MAX_RULE_NAME_BYTES = 1024 * 1024

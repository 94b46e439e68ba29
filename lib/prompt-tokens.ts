// Every prompt form the wire allows (a text, token ids, or a list of either) as token arrays, checked against the
// vocabulary: shared by generating models (lib/model.ts) and embedding models (lib/embedding-model.ts).
import { HearthError, invalidParam } from './errors.js'

export type PromptInput = string | ArrayLike<number> | (string | ArrayLike<number>)[]

/** Texts go through `tokenize` (off the JS thread); token ids must be integers in 0..nVocab-1. `param` names the input in errors. */
export async function promptTokenLists(raw: PromptInput, tokenize: (text: string) => Promise<Int32Array>, nVocab: number, param: string): Promise<Int32Array[]> {
  const list = typeof raw === 'string' || (raw.length > 0 && typeof raw[0] === 'number') ? [raw as string | ArrayLike<number>] : (raw as (string | ArrayLike<number>)[])
  if (list.length === 0) throw invalidParam(param, `${param} must not be empty`)
  return Promise.all(
    list.map(async (p, i) => {
      if (typeof p === 'string') return tokenize(p)
      if (p.length === 0) throw invalidParam(param, `${param}[${i}] is an empty token list`)
      const tokens = Int32Array.from(p)
      for (let k = 0; k < tokens.length; k++) {
        if (!(tokens[k]! >= 0 && tokens[k]! < nVocab) || tokens[k] !== p[k]) {
          throw new HearthError('invalid_token', `token id ${p[k]} is outside the vocabulary (0..${nVocab - 1})`, param)
        }
      }
      return tokens
    }),
  )
}

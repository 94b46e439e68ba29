// uWebSockets.js, asserted native. The package quietly falls back to a slow pure-JS implementation when its
// binary does not load; hearth refuses to run on that fallback and says why.
import uws from '@trufflesuite/uws-js-unofficial'
import { createRequire } from 'node:module'

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial'

function assertNative(): typeof uws {
  const require = createRequire(import.meta.url)
  const binary = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
  let loaded: unknown
  try {
    loaded = require(binary)
  } catch (err) {
    throw new Error(`hearth: the uWebSockets.js native binary does not load here (${binary}: ${(err as Error).message.split('\n')[0]}); refusing the slow JS fallback`)
  }
  if (loaded !== uws) throw new Error('hearth: uWebSockets.js loaded its JS fallback instead of the native binary; refusing to serve')
  return uws
}

export const native = assertNative()

#!/usr/bin/env node
// hearth's command line; the code is server/cli.ts, compiled to dist/. The model commands (ls, ps, load,
// unload) only talk to a running server: they skip loading the addon.
const argv = process.argv.slice(2)
const run = ['ls', 'ps', 'load', 'unload'].includes(argv[0])
  ? import('../dist/server/cli-models.js').then(async (m) => {
      process.exitCode = await m.modelsCommand(argv[0], argv.slice(1))
    })
  : import('../dist/server/cli.js').then((m) => m.main(argv))

run.catch((err) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})

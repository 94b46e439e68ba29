#!/usr/bin/env node
// hearth's command line; the code is server/cli.ts, compiled to dist/.
import { main } from '../dist/server/cli.js'

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})

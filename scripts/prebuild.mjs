// `npm run prebuild`: a portable (AVX2, CPU) addon in prebuilds/<platform>-<arch>/, made with prebuildify.
// The portable build has its own cmake folder (build-portable/) so it never replaces the local build tuned for
// this CPU; prebuildify then strips it and files it under the name node-gyp-build looks for.
import { mkdirSync, copyFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildAddon } from './install.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const out = join(root, 'build-portable')

buildAddon(['--out', out], { portable: true })

const stage = join(out, 'stage')
mkdirSync(join(stage, 'build', 'Release'), { recursive: true })
writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: 'hearth' }))
copyFileSync(join(out, 'Release', 'hearth.node'), join(stage, 'build', 'Release', 'hearth.node'))

const prebuildify = require('prebuildify')
// the addon is already built: prebuildify's "node-gyp" step is a no-op
prebuildify({ cwd: stage, out: root, napi: true, strip: true, nodeGyp: 'node -e ""', shell: true, targets: [] }, (err) => {
  if (err) {
    console.error(`hearth: prebuildify failed: ${err.message}`)
    process.exit(1)
  }
  console.log(`hearth: wrote prebuilds/${process.platform}-${process.arch}/hearth.node`)
})

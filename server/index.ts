// hearth/server: run the OpenAI-compatible server from your own code.
export { startServer, type HearthServer } from './app.js'
export { defaultConfig, type ServerConfig } from './state.js'
export { parseConfig } from './cli.js'

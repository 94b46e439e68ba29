// A real MCP server for the tests, made with the official SDK on 127.0.0.1: Streamable HTTP (stateless) at /mcp
// and the older HTTP+SSE transport at /sse (+ /messages). Tools: echo (answers with its argument), fail (a tool
// error), slow (answers only when the server closes). It records the headers and calls it receives.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'

export interface McpTestServer {
  /** http://127.0.0.1:PORT */
  url: string
  headers: IncomingHttpHeaders[]
  calls: { name: string; args: unknown }[]
  close(): Promise<void>
}

export async function startMcpTestServer(): Promise<McpTestServer> {
  const headers: IncomingHttpHeaders[] = []
  const calls: { name: string; args: unknown }[] = []
  let release: () => void = () => undefined
  const released = new Promise<void>((r) => (release = r))
  const make = () => {
    const s = new McpServer({ name: 'hearth-test', version: '1.0.0' })
    s.registerTool('echo', { description: 'Echoes a word', inputSchema: { word: z.enum(['alpha', 'beta']) }, annotations: { readOnlyHint: true } }, async (args) => {
      calls.push({ name: 'echo', args })
      return { content: [{ type: 'text', text: `echo:${args.word}` }] }
    })
    s.registerTool('fail', { description: 'Always fails', inputSchema: { word: z.enum(['alpha', 'beta']) } }, async (args) => {
      calls.push({ name: 'fail', args })
      return { isError: true, content: [{ type: 'text', text: 'the tool failed on purpose' }] }
    })
    s.registerTool('slow', { description: 'Never answers in time', inputSchema: { word: z.enum(['alpha', 'beta']) } }, async (args) => {
      calls.push({ name: 'slow', args })
      await released
      return { content: [{ type: 'text', text: 'late' }] }
    })
    return s
  }
  const sse = new Map<string, SSEServerTransport>()
  const server: Server = createServer((req, res) => {
    headers.push(req.headers)
    const path = new URL(req.url ?? '/', 'http://x').pathname
    void (async () => {
      if (path === '/mcp') {
        if (req.method !== 'POST') {
          res.writeHead(405).end()
          return
        }
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
        const s = make()
        res.on('close', () => void s.close())
        await s.connect(transport)
        await transport.handleRequest(req, res)
      } else if (path === '/sse' && req.method === 'GET') {
        const transport = new SSEServerTransport('/messages', res)
        sse.set(transport.sessionId, transport)
        res.on('close', () => sse.delete(transport.sessionId))
        await make().connect(transport)
      } else if (path === '/messages' && req.method === 'POST') {
        const transport = sse.get(new URL(req.url ?? '/', 'http://x').searchParams.get('sessionId') ?? '')
        if (!transport) res.writeHead(404).end()
        else await transport.handlePostMessage(req, res)
      } else res.writeHead(404).end()
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    headers,
    calls,
    async close() {
      release()
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

// What a result was measured on: CPU, cores, memory, Node and the commit, so numbers from different
// machines or commits are never compared by accident.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { repoRoot } from './paths.js'

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGB: number
  node: string
  platform: string
}

export function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    if (line) return line.slice(line.indexOf(':') + 1).trim()
  } catch {
    // not Linux: fall through to what Node knows
  }
  return cpus()[0]?.model ?? 'unknown'
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  }
}

/** HEAD's commit, with "-dirty" when the working tree has changes (the numbers then belong to no commit). */
export function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return dirty ? `${head}-dirty` : head
  } catch {
    return 'unknown'
  }
}

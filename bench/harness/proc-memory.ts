// A process's resident memory now (VmRSS), not its peak (VmHWM, which servers.ts reports): a soak watches it
// go up and down over minutes.
import { readFileSync } from 'node:fs'

/** Resident set size of `pid` in bytes; NaN when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : NaN
  } catch {
    return NaN
  }
}

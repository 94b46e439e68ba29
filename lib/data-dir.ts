// hearth's data folder: where state that outlives a process lives (stored responses; downloaded models).
import { homedir } from 'node:os'
import { posix, win32 } from 'node:path'

/**
 * The folder hearth keeps its data in; nothing is created here, callers make what they write into.
 * `$HEARTH_DATA_DIR` when set, else the platform's per-user data folder:
 * - Linux and other Unixes: `$XDG_DATA_HOME/hearth`, else `~/.local/share/hearth`
 * - macOS: `~/Library/Application Support/hearth`
 * - Windows: `%APPDATA%\hearth`, else `~\AppData\Roaming\hearth`
 * Reads HEARTH_DATA_DIR, XDG_DATA_HOME and APPDATA from `env`; the arguments exist for tests, the defaults are this
 * process's.
 */
export function dataDir(env: Record<string, string | undefined> = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  const path = platform === 'win32' ? win32 : posix
  if (env.HEARTH_DATA_DIR) return path.resolve(env.HEARTH_DATA_DIR)
  if (platform === 'win32') return path.join(env.APPDATA || path.join(home, 'AppData', 'Roaming'), 'hearth')
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'hearth')
  // the XDG spec says a relative value is invalid and must be ignored
  const xdg = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(home, '.local', 'share')
  return path.join(xdg, 'hearth')
}

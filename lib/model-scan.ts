// The models folders: which GGUF files are models, what each is called, and what its header says.
//
// Layouts served as they are:
//   <dir>/file.gguf                                     id "file"
//   <dir>/publisher/repo/file.gguf                      id "publisher/repo" (LM Studio's models folder)
//   <dir>/publisher/repo/{a,b}.gguf                     ids "publisher/repo/a", "publisher/repo/b" (several in one folder)
//   <dir>/models--org--repo/snapshots/<hash>/file.gguf  id "org/repo" (a Hugging Face hub cache)
// A split model (name-00001-of-00003.gguf ...) is one model, loaded from its first part. Projector files
// (mmproj*.gguf, or a header that says so) are not models: `pairProjector` says which model each belongs to.
// Hidden entries are skipped, and anything that is not a regular file (a FIFO would block the reader).
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'
import { readGgufHeader, stringKey, type GgufHeader } from './gguf-header.js'
import { modelInfo, type ModelInfo } from './model-info.js'

export interface ScannedModel {
  /** stable, readable id: see the layouts above */
  id: string
  /** the file llama.cpp opens (a split model's first part) */
  path: string
  /** every file of the model (the parts of a split model, in order) */
  files: string[]
  /** all its files together */
  sizeBytes: number
  /** the models folder it was found in ('' for files named on the command line) */
  root: string
  /** its path relative to that folder, with '/' */
  relPath: string
  /** what its header says; null when it cannot be read (see error) */
  info: ModelInfo | null
  /** why the file cannot be a model (unreadable header, a missing split part), or null */
  error: string | null
  /** the projector paired with it (images), or null */
  projector: string | null
  /** the files' sizes and modification times: a changed file is read (and tried) again */
  stamp: string
}

export interface ScanResult {
  models: ScannedModel[]
  /** every projector file found */
  projectors: string[]
  /** duplicate ids skipped, folders that cannot be read */
  warnings: string[]
}

/** Folders below a models folder that are looked into (the Hugging Face layout needs 3). */
const MAX_DEPTH = 5
const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i

interface Found {
  path: string
  /** the folder it is in, relative to the root and mapped to publisher/repo form */
  idDir: string[]
  sizeBytes: number
  mtimeMs: number
}

/** Reads headers once per file version (size and modification time). */
export class HeaderCache {
  readonly #entries = new Map<string, { stamp: string; header: Promise<GgufHeader> }>()

  get(path: string, sizeBytes: number, mtimeMs: number): Promise<GgufHeader> {
    const stamp = `${sizeBytes}:${mtimeMs}`
    const hit = this.#entries.get(path)
    if (hit && hit.stamp === stamp) return hit.header
    const header = readGgufHeader(path)
    header.catch(() => undefined)
    this.#entries.set(path, { stamp, header })
    return header
  }
}

export function isProjectorName(file: string): boolean {
  return /mmproj/i.test(basename(file))
}

function isProjectorHeader(h: GgufHeader): boolean {
  return stringKey(h, 'general.architecture') === 'clip' || stringKey(h, 'general.type') === 'mmproj'
}

/** A relative folder path as id segments: `models--org--repo/snapshots/<hash>/x` becomes `org/repo/x`. */
export function idSegments(rel: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < rel.length; i++) {
    const hub = /^models--(.+?)--(.+)$/.exec(rel[i]!)
    if (hub) {
      out.push(hub[1]!, hub[2]!)
      if (rel[i + 1] === 'snapshots' && rel[i + 2] !== undefined) i += 2
    } else out.push(rel[i]!)
  }
  return out
}

async function walk(root: string, dir: string, depth: number, visited: Set<string>, found: Found[], warnings: string[]): Promise<void> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    warnings.push(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return
  }
  const hubRepo = /^models--/.test(basename(dir))
  let names = entries.map((e) => e.name).filter((n) => !n.startsWith('.')).sort()
  if (hubRepo) names = names.filter((n) => n === 'snapshots')
  if (basename(dir) === 'snapshots' && /^models--/.test(basename(dirname(dir)))) {
    // the snapshot refs/main points at first, so its files win over older snapshots'
    const main = await readFile(join(dirname(dir), 'refs', 'main'), 'utf8').then((s) => s.trim(), () => '')
    names.sort((a, b) => Number(b === main) - Number(a === main))
  }
  for (const name of names) {
    const full = join(dir, name)
    const st = await stat(full).catch(() => null)
    if (!st) continue
    if (st.isDirectory()) {
      if (depth >= MAX_DEPTH) continue
      const real = await realpath(full).catch(() => full)
      if (visited.has(real)) continue
      visited.add(real)
      await walk(root, full, depth + 1, visited, found, warnings)
    } else if (st.isFile() && /\.gguf$/i.test(name)) {
      const rel = relative(root, dir)
      found.push({ path: full, idDir: idSegments(rel ? rel.split(sep) : []), sizeBytes: st.size, mtimeMs: st.mtimeMs })
    }
  }
}

interface Group {
  stem: string
  parts: Found[]
  /** parts the first part's name says there are */
  total: number
}

/** Files of one folder as models: split parts together under their common stem. */
function groupModels(files: Found[]): Group[] {
  const groups = new Map<string, Group>()
  for (const f of files) {
    const name = basename(f.path)
    const split = SPLIT.exec(name)
    const stem = split ? split[1]! : name.replace(/\.gguf$/i, '')
    const key = split ? `${stem}\u0000${split[3]}` : `${name}\u0000`
    const g = groups.get(key) ?? { stem, parts: [], total: split ? Number(split[3]) : 1 }
    g.parts.push(f)
    groups.set(key, g)
  }
  for (const g of groups.values()) g.parts.sort((a, b) => a.path.localeCompare(b.path))
  return [...groups.values()]
}

async function describe(g: Group, id: string, root: string, headers: HeaderCache): Promise<ScannedModel> {
  const first = g.parts[0]!
  const model: ScannedModel = {
    id,
    path: first.path,
    files: g.parts.map((p) => p.path),
    sizeBytes: g.parts.reduce((n, p) => n + p.sizeBytes, 0),
    root,
    relPath: root ? relative(root, first.path).split(sep).join('/') : first.path,
    info: null,
    error: null,
    projector: null,
    stamp: g.parts.map((p) => `${p.sizeBytes}:${p.mtimeMs}`).join(','),
  }
  const numbers = g.parts.map((p) => Number(SPLIT.exec(basename(p.path))?.[2] ?? 1))
  const missing = Array.from({ length: g.total }, (_, i) => i + 1).filter((n) => !numbers.includes(n))
  if (missing.length > 0) {
    model.error = `split model ${g.stem} has ${g.total} parts but part ${missing.join(', ')} is missing`
    return model
  }
  try {
    const parts = await Promise.all(g.parts.map((p) => headers.get(p.path, p.sizeBytes, p.mtimeMs)))
    const tensorBytes = g.parts.reduce((n, p, i) => n + p.sizeBytes - parts[i]!.headerBytes, 0)
    model.info = modelInfo(parts[0]!, tensorBytes, parts.flatMap((h) => h.tensors))
  } catch (err) {
    model.error = (err as Error).message
  }
  return model
}

/** One file named directly (the built-in model, --model): its id is given. */
export async function describeFile(path: string, id: string, headers: HeaderCache): Promise<ScannedModel> {
  const st = await stat(path).catch(() => null)
  const found: Found = { path, idDir: [], sizeBytes: st?.size ?? 0, mtimeMs: st?.mtimeMs ?? 0 }
  const m = await describe({ stem: id, parts: [found], total: 1 }, id, '', headers)
  if (!st) m.error = `cannot read ${path}: no such file`
  else if (!st.isFile()) m.error = `${path} is not a regular file`
  return m
}

/**
 * Every model in `dirs`, first folder first; an id found again later is skipped with a warning. Files whose
 * header cannot be read are listed with `error` set (a request for them answers that error).
 */
export async function scanModels(dirs: readonly string[], headers: HeaderCache = new HeaderCache()): Promise<ScanResult> {
  const result: ScanResult = { models: [], projectors: [], warnings: [] }
  const seen = new Set<string>()
  for (const root of dirs) {
    const found: Found[] = []
    const rootStat = await stat(root).catch(() => null)
    if (!rootStat?.isDirectory()) continue
    await walk(root, root, 0, new Set([await realpath(root).catch(() => root)]), found, result.warnings)
    // by folder: the id of a model depends on how many models share its folder
    const byDir = new Map<string, Found[]>()
    for (const f of found) byDir.set(dirname(f.path), [...(byDir.get(dirname(f.path)) ?? []), f])
    for (const files of byDir.values()) {
      const models: Found[] = []
      const projectors: string[] = []
      for (const f of files) {
        if (isProjectorName(f.path)) projectors.push(f.path)
        else if (await headers.get(f.path, f.sizeBytes, f.mtimeMs).then(isProjectorHeader, () => false)) projectors.push(f.path)
        else models.push(f)
      }
      result.projectors.push(...projectors)
      const groups = groupModels(models)
      for (const g of groups) {
        const idDir = g.parts[0]!.idDir
        const id = idDir.length === 0 ? g.stem : groups.length === 1 ? idDir.join('/') : [...idDir, g.stem].join('/')
        if (seen.has(id.toLowerCase())) {
          result.warnings.push(`${g.parts[0]!.path}: another model already has the id ${id}; skipped`)
          continue
        }
        seen.add(id.toLowerCase())
        const m = await describe(g, id, root, headers)
        m.projector = pairProjector(m.path, projectors)
        result.models.push(m)
      }
    }
  }
  return result
}

/** A file name without .gguf, its split suffix, and (for projectors) the mmproj marker, lower-cased. */
function nameCore(path: string): string {
  return basename(path)
    .replace(/\.gguf$/i, '')
    .replace(/-\d{5}-of-\d{5}$/, '')
    .replace(/(^|[-_.])mmproj([-_.]|$)/i, '$1')
    .toLowerCase()
}

/**
 * The projector that belongs to the model at `modelPath`, among `projectors` (paths): one in the model's own
 * folder; when there are several there, the one whose name (less "mmproj") shares the longest start with the
 * model's. Null when its folder holds none, or two are equally close.
 */
export function pairProjector(modelPath: string, projectors: readonly string[]): string | null {
  const here = projectors.filter((p) => dirname(p) === dirname(modelPath)).sort()
  if (here.length <= 1) return here[0] ?? null
  const core = nameCore(modelPath)
  const shared = (p: string) => {
    const c = nameCore(p)
    let n = 0
    while (n < c.length && n < core.length && c[n] === core[n]) n++
    return n
  }
  const scores = here.map(shared)
  const best = Math.max(...scores)
  // two equally close: no guess (a wrong projector gives garbage); the user names one with --mmproj
  return scores.filter((n) => n === best).length === 1 ? here[scores.indexOf(best)]! : null
}

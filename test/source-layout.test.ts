/**
 * The rules of docs/ARCHITECTURE.md that a reader cannot check at a glance, checked on the
 * source tree: no file of `src/` over 600 lines, a pure EventFold core (nothing imported from
 * outside `src/eventfold/`, so no I/O and no package), and a public entry point that opens with
 * its doc comment.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const src = fileURLToPath(new URL('../src', import.meta.url))
const MAX_LINES = 600

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(entries.map(async entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return await sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  }))
  return nested.flat()
}

/**
 * The module specifiers a file imports or re-exports: the `from '...'` that ends a statement
 * (a multi-line one ends on its `} from` line), a bare `import '...'`, and `import('...')`.
 */
function specifiers (text: string): string[] {
  const patterns = [/^(?:import|export|\})[^'\n]*\bfrom '([^']+)'$/gm, /^import '([^']+)'$/gm, /\bimport\('([^']+)'\)/g]
  return patterns.flatMap(pattern => [...text.matchAll(pattern)].map(match => match[1] as string))
}

test(`no file of src/ is longer than ${MAX_LINES} lines`, async () => {
  const files = await sourceFiles(src)
  assert.ok(files.length > 100, `found only ${files.length} source files under ${src}`)
  const long: string[] = []
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n').length - 1
    if (lines > MAX_LINES) long.push(`${relative(src, file)}: ${lines} lines`)
  }
  assert.deepEqual(long, [])
})

test('the EventFold core imports nothing from outside src/eventfold/', async () => {
  const files = await sourceFiles(join(src, 'eventfold'))
  assert.ok(files.length > 5)
  const outside: string[] = []
  let seen = 0
  for (const file of files) {
    for (const specifier of specifiers(await readFile(file, 'utf8'))) {
      seen++
      if (!/^\.\/[\w-]+\.js$/.test(specifier)) outside.push(`${relative(src, file)} imports ${specifier}`)
    }
  }
  assert.ok(seen > 20, `read only ${seen} imports: the pattern no longer matches the code's style`)
  assert.deepEqual(outside, [])
})

test('src/index.ts opens with a doc comment that holds an example', async () => {
  const text = await readFile(join(src, 'index.ts'), 'utf8')
  assert.ok(text.startsWith('/**'), 'src/index.ts does not start with a doc comment')
  const comment = text.slice(0, text.indexOf('*/'))
  assert.match(comment, /@example|```/)
})

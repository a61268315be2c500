// Builds the storage modules written in C (`deno task backends`) into build/backends/ with gcc:
//
//   liblmdb_backend.so     backends/lmdb/lmdb_backend.c, linked with Debian's liblmdb (liblmdb-dev)
//   libmemory_example.so   backends/example/memory_backend.c, the example in docs/backends.md
//
// Both include ffi/dxenstored_backend.h (the ABI). The .so files are build products (build/ is not
// in git): tests and `deno task bench:backend` call ensureModule(), which builds a module when it is
// missing or older than its sources, so a fresh clone (CI) builds them on first use.
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export interface ModuleSpec {
  /** The C source, relative to the repository. */
  readonly source: string;
  /** The shared object, relative to the repository. */
  readonly output: string;
  /** Libraries to link (-l...), and the Debian package that provides their headers. */
  readonly libs: readonly string[];
  readonly debianPackages: readonly string[];
  /** -D definitions (test variants). */
  readonly defines?: readonly string[];
}

export const ABI_HEADER = "ffi/dxenstored_backend.h";

export const MODULES = {
  lmdb: {
    source: "backends/lmdb/lmdb_backend.c",
    output: "build/backends/liblmdb_backend.so",
    libs: ["lmdb"],
    debianPackages: ["gcc", "liblmdb-dev"],
  },
  example: {
    source: "backends/example/memory_backend.c",
    output: "build/backends/libmemory_example.so",
    libs: [],
    debianPackages: ["gcc"],
  },
} as const satisfies Record<string, ModuleSpec>;

export type ModuleName = keyof typeof MODULES;

/** gcc's arguments for a module (paths relative to the repository: the command docs/backends.md shows). */
export function gccArgs(m: ModuleSpec, output = m.output): string[] {
  return [
    "-shared",
    "-fPIC",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-I",
    "ffi",
    ...(m.defines ?? []).map((d) => `-D${d}`),
    "-o",
    output,
    m.source,
    ...m.libs.map((l) => `-l${l}`),
  ];
}

/** The build command as a shell line ("gcc -shared ... -llmdb"). */
export function gccCommand(m: ModuleSpec): string {
  return ["gcc", ...gccArgs(m)].join(" ");
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return -1;
    throw e;
  }
}

/** The module could not be built (no gcc, a missing header, a compile error). */
export class ModuleBuildError extends Error {
  override name = "ModuleBuildError";
}

/**
 * Compile `m` unless its output is newer than its source and the ABI header; returns the output's
 * absolute path. The output is written under a temporary name and renamed, so a concurrent reader
 * never sees half a file.
 */
export async function ensureModule(m: ModuleSpec, opts: { force?: boolean } = {}): Promise<string> {
  const out = `${root}/${m.output}`;
  const built = mtime(out);
  if (!opts.force && built >= mtime(`${root}/${m.source}`) && built >= mtime(`${root}/${ABI_HEADER}`)) {
    return out;
  }
  Deno.mkdirSync(out.slice(0, out.lastIndexOf("/")), { recursive: true });
  const tmp = `${m.output}.tmp-${Deno.pid}`;
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("gcc", {
      args: gccArgs(m, tmp),
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (e) {
    throw new ModuleBuildError(`gcc not found (apt-get install ${m.debianPackages.join(" ")}): ${e}`);
  }
  if (!result.success) {
    try {
      Deno.removeSync(`${root}/${tmp}`);
    } catch { /* not written */ }
    throw new ModuleBuildError(
      `building ${m.output} failed (apt-get install ${m.debianPackages.join(" ")}):\n` +
        new TextDecoder().decode(result.stderr),
    );
  }
  Deno.renameSync(`${root}/${tmp}`, out);
  return out;
}

if (import.meta.main) {
  const names = Deno.args.length > 0 ? Deno.args : Object.keys(MODULES);
  for (const name of names) {
    const m = (MODULES as Record<string, ModuleSpec>)[name];
    if (m === undefined) {
      console.error(`unknown module ${name}; known: ${Object.keys(MODULES).join(", ")}`);
      Deno.exit(2);
    }
    try {
      const out = await ensureModule(m, { force: true });
      console.log(`built ${m.output} (${Deno.statSync(out).size} bytes): ${gccCommand(m)}`);
    } catch (e) {
      console.error((e as Error).message);
      Deno.exit(1);
    }
  }
}

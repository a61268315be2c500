// Build a backend from its `--backend` spec.
import type { Backend, BackendOptions, BackendSpec } from "./backend.ts";
import { FileBackend } from "./file.ts";
import { MemoryBackend } from "./memory.ts";
import { NativeBackend } from "./native.ts";
import { SqliteBackend } from "./sqlite.ts";
import { TdbBackend } from "./tdb.ts";

/** Relative paths are taken from the working directory at start (later chdirs do not move the store). */
function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
}

export function createBackend(spec: BackendSpec, opts: BackendOptions): Backend {
  switch (spec.kind) {
    case "memory":
      return new MemoryBackend();
    case "file":
      return new FileBackend(absolute(spec.dir), opts);
    case "sqlite":
      return new SqliteBackend(absolute(spec.file), opts);
    case "tdb":
      return new TdbBackend(absolute(spec.file), opts);
    case "so":
      // A bare name ("libfoo.so") is the dynamic linker's to find, as dlopen does; a path is a file.
      return new NativeBackend(
        spec.library.includes("/") ? absolute(spec.library) : spec.library,
        spec.args,
        opts,
      );
  }
}

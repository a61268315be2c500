// Build a backend from its `--backend` spec.
import type { Backend, BackendOptions, BackendSpec } from "./backend.ts";
import { FileBackend } from "./file.ts";
import { MemoryBackend } from "./memory.ts";
import { SqliteBackend } from "./sqlite.ts";

export function createBackend(spec: BackendSpec, opts: BackendOptions): Backend {
  switch (spec.kind) {
    case "memory":
      return new MemoryBackend();
    case "file":
      return new FileBackend(spec.dir, opts);
    case "sqlite":
      return new SqliteBackend(spec.file, opts);
  }
}

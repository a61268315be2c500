// The memory backend: nothing is persisted; every start begins with the initial tree.
import type { Backend, LoadedState } from "./backend.ts";

export class MemoryBackend implements Backend {
  readonly name = "memory";
  load(): LoadedState | null {
    return null;
  }
  persist(): void {}
  wantsCompaction(): boolean {
    return false;
  }
  compact(): void {}
  close(): void {}
}

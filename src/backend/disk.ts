// The file system as the file backend (./file.ts) uses it: the few synchronous calls it makes, as an
// interface, so that a simulated disk can stand in for the real one (tests/sim: torn writes, failing
// fsync, a full disk, unsynced data lost in a crash) while the backend's code stays the one that runs.
// The names and signatures are Deno's, so `Deno.FsFile` is a DiskFile and `REAL_DISK` is just Deno.
// Below them, the few compound steps the backend builds from those calls (file.ts, file_load.ts).

/** An open file: the subset of Deno.FsFile the backend calls. */
export interface DiskFile {
  writeSync(p: Uint8Array): number;
  readSync(p: Uint8Array): number | null;
  /** Only Deno.SeekMode.Start is used. */
  seekSync(offset: number, whence: Deno.SeekMode): number;
  truncateSync(len?: number): void;
  syncDataSync(): void;
  syncSync(): void;
  tryLockSync(exclusive?: boolean): boolean;
  close(): void;
}

/** The file system calls of the backend; missing files throw Deno.errors.NotFound, as Deno does. */
export interface Disk {
  /**
   * O_DIRECT and Linux AIO (./direct_log.ts) may be used: they bypass this interface, so only the real
   * disk has them; on any other the backend writes through writeSync and syncs with syncDataSync.
   */
  readonly directIo: boolean;
  openSync(path: string, options: Deno.OpenOptions): DiskFile;
  readFileSync(path: string): Uint8Array;
  writeFileSync(path: string, data: Uint8Array): void;
  removeSync(path: string): void;
  renameSync(from: string, to: string): void;
  truncateSync(path: string, len: number): void;
  mkdirSync(path: string, options: { recursive: boolean }): void;
}

/** The real file system (Deno's calls, unchanged). */
export const REAL_DISK: Disk = {
  directIo: true,
  openSync: (path, options) => Deno.openSync(path, options),
  readFileSync: (path) => Deno.readFileSync(path),
  writeFileSync: (path, data) => Deno.writeFileSync(path, data),
  removeSync: (path) => Deno.removeSync(path),
  renameSync: (from, to) => Deno.renameSync(from, to),
  truncateSync: (path, len) => Deno.truncateSync(path, len),
  mkdirSync: (path, options) => Deno.mkdirSync(path, options),
};

/** The file's bytes, or null if it does not exist. */
export function readIfExists(disk: Disk, path: string): Uint8Array | null {
  try {
    return disk.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Write all of `b` to `f` (short writes continued). */
export function writeAll(f: DiskFile, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += f.writeSync(b.subarray(off));
}

/** Remove `path`; a missing file is no error. */
export function removeIfExists(disk: Disk, path: string): void {
  try {
    disk.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Write `b` as the whole content of `path` and sync it (data and metadata) before returning. */
export function writeDurably(disk: Disk, path: string, b: Uint8Array): void {
  const f = disk.openSync(path, { write: true, create: true, truncate: true });
  try {
    writeAll(f, b);
    f.syncSync();
  } finally {
    f.close();
  }
}

/** Sync directory `dir` (so renames and creations in it are durable). */
export function syncDir(disk: Disk, dir: string): void {
  const d = disk.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

// The file system as the file backend (./file.ts) uses it: the few synchronous calls it makes, as an
// interface, so that a simulated disk can stand in for the real one (tests/sim: torn writes, failing
// fsync, a full disk, unsynced data lost in a crash) while the backend's code stays the one that runs.
// The names and signatures are Deno's, so `Deno.FsFile` is a DiskFile and `REAL_DISK` is just Deno.

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

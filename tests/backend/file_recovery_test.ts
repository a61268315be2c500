// The file backend under damage: torn tails, corruption before the tail, missing or damaged
// snapshots, stale logs from interrupted compactions, a second daemon, and write errors (a real
// ENOSPC from /dev/full and from a full tmpfs, and a failing fsync).
import { NativeBackend } from "../../src/backend/native.ts";
import { moduleOrSkip } from "./modules.ts";
import { type Backend, BackendError } from "../../src/backend/backend.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { LOG_HEADER } from "../../src/backend/file_load.ts";
import { readFrame } from "../../src/backend/records.ts";
import { SqliteBackend } from "../../src/backend/sqlite.ts";
import { TdbBackend } from "../../src/backend/tdb.ts";
import { libtdbAvailable } from "../../src/backend/tdb_ffi.ts";
import assert from "../helpers/assert.ts";
import { assertSameTree, assertSound, Harness, ReplyError } from "./harness.ts";

function withDir(fn: (dir: string) => void): () => void {
  return () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxs-recovery-" });
    try {
      fn(dir);
    } catch (e) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* keep the test's own error (e.g. a tmpfs still busy) */ }
      throw e;
    }
    Deno.removeSync(dir, { recursive: true });
  };
}

/** Offsets of the records in a log file. */
function recordOffsets(log: Uint8Array): number[] {
  const out: number[] = [];
  let pos = LOG_HEADER;
  while (pos < log.length) {
    const f = readFrame(log, pos);
    if (!f.ok) break;
    out.push(pos);
    pos = f.end;
  }
  return out;
}

/** A store with /k0../k4 written one commit each; returns the log path. */
function fiveWrites(dir: string): string {
  const h = new Harness(new FileBackend(dir));
  for (let i = 0; i < 5; i++) h.write(`/k${i}`, `v${i}`);
  h.close();
  return `${dir}/log`;
}

function read(h: Harness, path: string): string | null {
  try {
    return h.req(2, `${path}\0`);
  } catch (e) {
    if (e instanceof ReplyError && e.errno === "ENOENT") return null;
    throw e;
  }
}

Deno.test(
  "file: a torn last record is discarded, earlier records kept",
  withDir((dir) => {
    const log = fiveWrites(dir);
    const bytes = Deno.readFileSync(log);
    const offs = recordOffsets(bytes);
    assert.equal(offs.length, 5);
    // Cut the last record in the middle.
    Deno.truncateSync(log, offs[4] + 7);
    let h = new Harness(new FileBackend(dir));
    assert.equal(read(h, "/k3"), "v3");
    assert.equal(read(h, "/k4"), null);
    assert.equal(Deno.statSync(log).size, offs[4], "log truncated to its valid prefix");
    h.write("/k5", "v5"); // appends after the valid prefix
    const root = h.root;
    h.close();
    h = new Harness(new FileBackend(dir));
    assertSameTree(h.root, root);
    h.close();
  }),
);

Deno.test(
  "file: a partial header or zero-filled tail is a torn tail too",
  withDir((dir) => {
    const log = fiveWrites(dir);
    const size = Deno.statSync(log).size;
    const f = Deno.openSync(log, { append: true });
    f.writeSync(new Uint8Array(5)); // 5 bytes: less than a header
    f.close();
    let h = new Harness(new FileBackend(dir));
    assert.equal(read(h, "/k4"), "v4");
    h.close();
    assert.equal(Deno.statSync(log).size, size);
    const g = Deno.openSync(log, { append: true });
    g.writeSync(new Uint8Array(4096)); // delayed allocation after a crash: zeros
    g.close();
    h = new Harness(new FileBackend(dir));
    assert.equal(read(h, "/k4"), "v4");
    h.close();
  }),
);

Deno.test(
  "file: corruption before the tail refuses to start; --recover keeps the valid prefix",
  withDir((dir) => {
    const log = fiveWrites(dir);
    const bytes = Deno.readFileSync(log);
    const offs = recordOffsets(bytes);
    bytes[offs[2] + 20] ^= 0x40; // a payload byte of record 2 of 5
    Deno.writeFileSync(log, bytes);
    const e = assert.throws(() => new Harness(new FileBackend(dir)), BackendError);
    assert.ok(/corrupt at offset/.test(e.message) && /--recover/.test(e.message), e.message);
    assert.equal(Deno.readFileSync(log).length, bytes.length, "refusing leaves the log untouched");
    let h = new Harness(new FileBackend(dir, { recover: true }));
    assert.equal(read(h, "/k1"), "v1");
    assert.equal(read(h, "/k2"), null);
    assert.equal(read(h, "/k4"), null);
    const dropped = [...Deno.readDirSync(dir)].filter((d) => d.name.startsWith("log.dropped-"));
    assert.equal(dropped.length, 1, "dropped bytes saved");
    assert.equal(Deno.statSync(`${dir}/${dropped[0].name}`).size, bytes.length - offs[2]);
    const root = h.root;
    h.close();
    h = new Harness(new FileBackend(dir)); // the recovered state is clean without --recover
    assertSameTree(h.root, root);
    assertSound(h.root, h.core.db.generation);
    h.close();
  }),
);

Deno.test(
  "file: a damaged length field mid-file is corruption, not a torn tail",
  withDir((dir) => {
    const log = fiveWrites(dir);
    const bytes = Deno.readFileSync(log);
    const offs = recordOffsets(bytes);
    bytes[offs[1]] ^= 0x01;
    Deno.writeFileSync(log, bytes);
    assert.throws(
      () => new Harness(new FileBackend(dir)),
      BackendError,
      (e) => /damaged record header/.test(e.message),
    );
  }),
);

Deno.test(
  "file: a missing snapshot refuses to start; --recover replays the log over the initial tree",
  withDir((dir) => {
    const h0 = new Harness(new FileBackend(dir));
    h0.write("/a/b", "1");
    h0.setPerms("/a", ["r2"]);
    const root = h0.root;
    h0.close();
    Deno.removeSync(`${dir}/snapshot`);
    assert.throws(
      () => new Harness(new FileBackend(dir)),
      BackendError,
      (e) => /snapshot.*missing/.test(e.message),
    );
    // The first log continues the initial tree, so nothing is lost here.
    const h = new Harness(new FileBackend(dir, { recover: true }));
    assertSameTree(h.root, root);
    h.close();
    assert.ok(Deno.statSync(`${dir}/snapshot`).isFile, "recovery wrote a new snapshot");
  }),
);

Deno.test(
  "file: a damaged snapshot refuses to start, even with --recover",
  withDir((dir) => {
    fiveWrites(dir);
    const s = Deno.readFileSync(`${dir}/snapshot`);
    s[s.length - 3] ^= 0xff;
    Deno.writeFileSync(`${dir}/snapshot`, s);
    for (const recover of [false, true]) {
      assert.throws(
        () => new Harness(new FileBackend(dir, { recover })),
        BackendError,
        (e) => /snapshot is damaged/.test(e.message),
      );
    }
  }),
);

Deno.test(
  "file: compaction; a stale log left by an interrupted compaction is ignored",
  withDir((dir) => {
    let h = new Harness(new FileBackend(dir, { compactBytes: 1 << 20 }));
    for (let i = 0; i < 20; i++) h.write(`/x`, String(i).repeat(100)); // log ≫ snapshot
    h.close();
    const oldLog = Deno.readFileSync(`${dir}/log`);
    h = new Harness(new FileBackend(dir, { compactBytes: 64 }));
    // The log is over 64 bytes and twice the snapshot: compacted as the store is attached.
    const root = h.root;
    h.close();
    assert.equal(Deno.statSync(`${dir}/log`).size, LOG_HEADER, "compaction emptied the log");
    // Crash between the snapshot rename and the log rename: the old log is back.
    Deno.writeFileSync(`${dir}/log`, oldLog);
    h = new Harness(new FileBackend(dir));
    assertSameTree(h.root, root);
    h.close();
  }),
);

Deno.test(
  "file: a second daemon on the same directory is refused",
  withDir((dir) => {
    const h = new Harness(new FileBackend(dir));
    assert.throws(() => new FileBackend(dir).load(), BackendError, (e) => /in use/.test(e.message));
    h.close();
  }),
);

/** Writes half of every record to the real log, then fails with the kernel's ENOSPC (/dev/full). */
class FullDisk extends FileBackend {
  full = false;
  protected override writeLog(f: Deno.FsFile, frame: Uint8Array): void {
    if (!this.full) return super.writeLog(f, frame);
    f.writeSync(frame.subarray(0, frame.length >> 1));
    const dev = Deno.openSync("/dev/full", { write: true });
    try {
      dev.writeSync(frame);
    } finally {
      dev.close();
    }
  }
}

Deno.test(
  "file: ENOSPC reaches the client, the write is not applied, the log stays clean",
  withDir((dir) => {
    const b = new FullDisk(dir);
    let h = new Harness(b);
    h.write("/a", "1");
    b.full = true;
    const before = h.root;
    assert.throws(() => h.write("/a", "2"), ReplyError, (e) => e.errno === "ENOSPC");
    const tx = h.start();
    h.write("/t1", "x", tx);
    h.write("/t2", "y", tx);
    assert.throws(() => h.end(tx), ReplyError, (e) => e.errno === "ENOSPC");
    assert.equal(h.root, before, "nothing committed in memory");
    assert.equal(read(h, "/a"), "1");
    b.full = false; // space freed: writes work again
    h.write("/b", "2");
    const root = h.root;
    h.close();
    h = new Harness(new FileBackend(dir)); // no torn record left behind: loads cleanly
    assertSameTree(h.root, root);
    assert.equal(read(h, "/t1"), null);
    h.close();
  }),
);

class BadSync extends FileBackend {
  broken = false;
  protected override syncLog(f: Deno.FsFile): void {
    if (this.broken) throw Object.assign(new Error("Input/output error (os error 5)"), { code: "EIO" });
    super.syncLog(f);
  }
}

Deno.test(
  "file: a failed fsync answers EIO and disables further writes",
  withDir((dir) => {
    const b = new BadSync(dir);
    const h = new Harness(b);
    h.write("/a", "1");
    b.broken = true;
    assert.throws(() => h.write("/a", "2"), ReplyError, (e) => e.errno === "EIO");
    b.broken = false;
    assert.throws(() => h.write("/b", "3"), ReplyError, (e) => e.errno === "EIO");
    assert.equal(read(h, "/a"), "1");
    h.close();
  }),
);

/** Mount a small tmpfs (root only); null when mounting is not possible here. */
function smallTmpfs(dir: string, size: string): string | null {
  const mnt = `${dir}/mnt`;
  Deno.mkdirSync(mnt);
  try {
    const r = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt],
      stderr: "null",
    })
      .outputSync();
    return r.success ? mnt : null;
  } catch {
    return null;
  }
}

function umount(mnt: string): void {
  new Deno.Command("umount", { args: [mnt] }).outputSync();
}

const FULL_DISK_KINDS = [
  "file",
  "sqlite",
  "tdb",
  "file group:0",
  "sqlite group:0",
  "lmdb",
  "lmdb group:0",
] as const;
/** The LMDB storage module in C (so:), built on first use. */
const LMDB = await moduleOrSkip("lmdb");

function makeOn(mnt: string, kind: typeof FULL_DISK_KINDS[number]): Backend {
  const group = kind.endsWith("group:0");
  const opts = { sync: group ? "group:0" as const : "always" as const };
  if (kind.startsWith("file")) return new FileBackend(`${mnt}/s`, opts);
  if (kind.startsWith("sqlite")) return new SqliteBackend(`${mnt}/s.db`, opts);
  if (kind.startsWith("lmdb")) return new NativeBackend(LMDB!, `${mnt}/lmdb`, opts);
  return new TdbBackend(`${mnt}/s.tdb`, opts);
}

for (
  const kind of FULL_DISK_KINDS.filter((k) =>
    (k !== "tdb" || libtdbAvailable()) && (!k.startsWith("lmdb") || LMDB !== null)
  )
) {
  Deno.test(
    `${kind}: a really full disk (tmpfs) answers ENOSPC and keeps every acknowledged write`,
    withDir((dir) => {
      // libtdb's hash table alone is 256 KiB (65521 buckets), and it grows its file in big steps.
      const mnt = smallTmpfs(dir, kind === "tdb" ? "6m" : "256k");
      if (mnt === null) {
        console.warn("skipped: cannot mount a tmpfs here (needs root)");
        return;
      }
      let h: Harness | null = null;
      try {
        const backend = makeOn(mnt, kind);
        h = new Harness(backend);
        // Group commit: a reply is acknowledged only once the group's sync succeeded (the server
        // holds it until then); a write whose sync failed was never acknowledged.
        const group = backend.deferredSync?.() ?? null;
        const acked = new Map<string, string>();
        let held = new Map<string, string>();
        const sync = () => {
          group?.syncNow();
          for (const [p, v] of held) acked.set(p, v);
          held = new Map();
        };
        let errno: string | null = null;
        for (let i = 0; i < 5000 && errno === null; i++) {
          const v = String.fromCharCode(65 + (i % 26)).repeat(2000);
          try {
            h.write(`/fill/k${i}`, v);
            held.set(`/fill/k${i}`, v);
          } catch (e) {
            if (!(e instanceof ReplyError)) throw e;
            errno = e.errno;
            assert.equal(read(h, `/fill/k${i}`), null, "the refused write is not visible");
          }
          if (i % 3 === 2 && errno === null) {
            try {
              sync();
            } catch (e) {
              assert.ok(group !== null && /full|no space left/i.test(String(e)), `sync: ${e}`);
              errno = "ENOSPC"; // at the group's sync: nothing of the group was acknowledged
            }
          }
        }
        assert.ok(errno === "ENOSPC", `expected ENOSPC, got ${errno}`);
        assert.equal(read(h, "/fill/k0"), "A".repeat(2000), "reads keep working");
        try {
          sync(); // the writes of the group before the failed one
        } catch (e) {
          // SQLite writes a transaction's pages at COMMIT: there a full disk fails the whole group,
          // whose replies the server never sends (the daemon stops).
          assert.ok(group !== null, `only group mode syncs here: ${e}`);
        }
        h.close();
        h = new Harness(makeOn(mnt, kind));
        for (const [p, v] of acked) assert.equal(read(h, p), v, p);
        assert.ok(acked.size >= 5, `only ${acked.size} writes acknowledged`);
      } finally {
        h?.close(); // an open file would keep the tmpfs busy
        umount(mnt);
      }
    }),
  );
}

Deno.test(
  "file: preallocated zeros after the log's end, and a record cut short inside them, are a clean tail",
  withDir((dir) => {
    const h = new Harness(new FileBackend(`${dir}/live`)); // sync=always: preallocates 1 MiB
    for (let i = 0; i < 5; i++) h.write(`/k${i}`, `v${i}`);
    // A crash now leaves the files as they are: copy them while the daemon "runs".
    Deno.mkdirSync(`${dir}/crash`);
    for (const f of ["snapshot", "log"]) Deno.copyFileSync(`${dir}/live/${f}`, `${dir}/crash/${f}`);
    h.close();
    const log = Deno.readFileSync(`${dir}/crash/log`);
    const offs = recordOffsets(log);
    assert.equal(offs.length, 5);
    const end = readFrame(log, offs[4]);
    assert.ok(end.ok);
    assert.ok(log.length >= end.end + 512 * 1024, `preallocated: ${log.length} bytes for ${end.end}`);
    let r = new Harness(new FileBackend(`${dir}/crash`));
    assert.equal(read(r, "/k4"), "v4");
    assert.equal(Deno.statSync(`${dir}/crash/log`).size, end.end, "zeros cut at start");
    r.close();
    // Half of a sixth record in the zeros (a power loss mid-write): torn, not corruption.
    const torn = new Uint8Array(log.length);
    torn.set(log);
    torn.set(log.subarray(offs[3], offs[3] + 10), end.end); // a plausible header, then zeros
    Deno.writeFileSync(`${dir}/crash/log`, torn);
    r = new Harness(new FileBackend(`${dir}/crash`));
    assert.equal(read(r, "/k4"), "v4");
    r.close();
  }),
);

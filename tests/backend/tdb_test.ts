// The tdb backend and the importer of Xen xenstored TDB files: a real database written by Debian's
// cxenstored (4.17, --internal-db=off) when it and the anchors' fake-Xen shim are here; synthetic
// files of both record layouts written through libtdb; damage, refusals, locking.
import { BackendError } from "../../src/backend/backend.ts";
import { flatten } from "../../src/backend/records.ts";
import { TdbBackend } from "../../src/backend/tdb.ts";
import { latin1, libtdbAvailable, TDB_NOMMAP, TdbFile } from "../../src/backend/tdb_ffi.ts";
import { O_CREAT, O_RDWR } from "../../ffi/libc.ts";
import {
  encodeNodeRecord,
  readXenstoredTdb,
  TDB_VERSION_SAMBA,
  TDB_VERSION_XEN,
  tdbVersion,
} from "../../src/backend/xs_tdb.ts";
import { Perms } from "../../src/store/perms.ts";
import { ANCHORS_BUILD } from "../helpers/anchor.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { assertSound, Harness, ReplyError } from "./harness.ts";

/** Every test here needs libtdb (Debian: libtdb1); without it they are reported as ignored. */
function tdbTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !libtdbAvailable(), fn });
}

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxs-tdb-" });
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

/** Values and permission texts by path (generations aside). */
function contents(root: Parameters<typeof flatten>[0]): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [p, [v, perms]] of flatten(root)) out[p] = [v, perms];
  return out;
}

/** A record in the Xen ≤ 4.8 layout: u32 num_perms, datalen, childlen; perms; value; children. */
function oldRecord(value: string, perms: Array<[number, number]>, children: string[]): Uint8Array {
  const kids = children.map((c) => c + "\0").join("");
  const b = new Uint8Array(12 + 8 * perms.length + value.length + kids.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, perms.length, true);
  dv.setUint32(4, value.length, true);
  dv.setUint32(8, kids.length, true);
  perms.forEach(([id, bits], i) => {
    dv.setUint32(12 + 8 * i, id, true);
    dv.setUint32(16 + 8 * i, bits, true);
  });
  b.set(latin1.encode(value + kids), 12 + 8 * perms.length);
  return b;
}

function writeTdb(path: string, records: Array<[string, Uint8Array]>): void {
  const t = TdbFile.open(path, { hashSize: 131, tdbFlags: TDB_NOMMAP, openFlags: O_RDWR | O_CREAT });
  try {
    for (const [k, v] of records) t.store(latin1.encode(k), v);
  } finally {
    t.close();
  }
}

function setVersion(path: string, version: number): void {
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    const w = new Uint8Array(4);
    new DataView(w.buffer).setUint32(0, version, true);
    f.seekSync(32, Deno.SeekMode.Start);
    f.writeSync(w);
  } finally {
    f.close();
  }
}

tdbTest(
  "xenstored TDB import: Xen ≤ 4.8 layout, transaction copies, orphans, bad records, ignored permissions",
  withDir((dir) => {
    const f = `${dir}/tdb`;
    writeTdb(f, [
      ["/", oldRecord("", [[0, 0]], ["tool", "vm", "gone"])],
      ["/tool", oldRecord("", [[0, 0]], ["xenstored"])],
      ["/tool/xenstored", oldRecord("", [[0, 0]], [])],
      ["/vm", oldRecord("v\x00\xff", [[3, 1], [7, 3], [9, 2 | 0x10], [4, 2 | 8]], ["x"])],
      ["/vm/x", oldRecord("line\nbreak", [[3, 0]], [])],
      ["/orphan/child", oldRecord("lost", [[0, 0]], [])],
      ["12/vm/x", oldRecord("in a transaction", [[3, 0]], [])],
      ["/bad", new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])],
    ]);
    assert.equal(tdbVersion(f), TDB_VERSION_SAMBA);
    const r = readXenstoredTdb(f);
    assert.equal(r.layout, "nogen");
    assert.deepEqual(contents(r.root), {
      "/": ["", "n0\0"],
      "/tool": ["", "n0\0"],
      "/tool/xenstored": ["", "n0\0"],
      "/vm": ["v\x00\xff", "r3\0b7\0w4\0"],
      "/vm/x": ["line\nbreak", "n3\0"],
    });
    const w = r.warnings.join("\n");
    assert.ok(/skipped 1 records of transactions/.test(w), w);
    assert.ok(/dropped 1 permission entries/.test(w), w);
    assert.ok(/dropped 1 nodes whose parent has no record/.test(w), w);
    assert.ok(/skipped \/bad: record size/.test(w), w);
    assert.ok(/1 listed children have no record/.test(w), w); // "gone"
  }),
);

tdbTest(
  "xenstored TDB import: Xen 4.9+ layout (version word + 7, generations) is read from a patched copy",
  withDir((dir) => {
    const f = `${dir}/tdb`;
    const rec = (v: string, gen: number, kids: string[]) => {
      // Xen's layout: our encoder plus a child list in place of the trailing padding.
      const base = encodeNodeRecord(v, Perms.of(0, 0), gen);
      const k = latin1.encode(kids.map((c) => c + "\0").join(""));
      const b = new Uint8Array(base.length + k.length);
      b.set(base);
      new DataView(b.buffer).setUint32(16, k.length, true);
      b.set(k, base.length - 4);
      return b;
    };
    writeTdb(f, [["/", rec("", 7, ["a"])], ["/a", rec("x", 5, [])], ["/a/deep", rec("", 2 ** 40, [])]]);
    setVersion(f, TDB_VERSION_XEN);
    const before = Deno.readFileSync(f);
    const r = readXenstoredTdb(f);
    assert.equal(r.layout, "gen");
    assert.deepEqual(flatten(r.root).get("/a"), ["x", "n0\0", 5]);
    assert.equal(flatten(r.root).get("/a/deep")![2], 2 ** 40);
    assert.equal(r.gen, 2 ** 40);
    assert.deepEqual(Deno.readFileSync(f), before, "the original file is untouched");
    // The backend refuses to open it, pointing at the importer.
    assert.throws(() => new TdbBackend(f).load(), BackendError, (e) => /dxenstored import/.test(e.message));
  }),
);

tdbTest(
  "tdb backend: a foreign TDB is refused, a damaged record refuses the start unless --recover",
  withDir((dir) => {
    writeTdb(`${dir}/foreign.tdb`, [["some", latin1.encode("thing")]]);
    assert.throws(
      () => new TdbBackend(`${dir}/foreign.tdb`).load(),
      BackendError,
      (e) => /no dxenstored store/.test(e.message),
    );
    const f = `${dir}/s.tdb`;
    let h = new Harness(new TdbBackend(f));
    h.write("/a", "MARKER-VALUE-1234");
    h.write("/b", "kept");
    h.close();
    // Make /a's record lie about its value length: the record no longer decodes.
    const bytes = Deno.readFileSync(f);
    const at = new TextDecoder("latin1").decode(bytes).indexOf("MARKER-VALUE-1234");
    assert.ok(at > 0);
    new DataView(bytes.buffer).setUint32(at - 8 - 8, 9999, true); // datalen (one perm entry before the value)
    Deno.writeFileSync(f, bytes);
    assert.throws(
      () => new TdbBackend(f).load(),
      BackendError,
      (e) => /unreadable records.*--recover/.test(e.message),
    );
    h = new Harness(new TdbBackend(f, { recover: true }));
    assert.throws(() => h.req(XS.READ, "/a\0"), ReplyError, (e) => e.errno === "ENOENT");
    assert.equal(h.req(XS.READ, "/b\0"), "kept");
    assertSound(h.root, h.core.db.generation);
    h.close();
  }),
);

tdbTest(
  "tdb backend: one daemon per file; group commit is refused",
  withDir((dir) => {
    const f = `${dir}/s.tdb`;
    const h = new Harness(new TdbBackend(f));
    assert.throws(() => new TdbBackend(f).load(), BackendError, (e) => /in use/.test(e.message));
    h.close();
    assert.throws(
      () => new TdbBackend(f, { sync: "group:1" }).load(),
      BackendError,
      (e) => /not supported by the tdb backend/.test(e.message),
    );
  }),
);

const XENSTORED = "/usr/lib/xen-4.17/bin/xenstored";
const SHIM = `${ANCHORS_BUILD}/xsshim.so`;

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "xenstored TDB import: a database left by Debian's cxenstored 4.17 killed with SIGKILL",
  ignore: !exists(XENSTORED) || !exists(SHIM) || !libtdbAvailable(),
  fn: withDir(async (dir) => {
    const socket = `${dir}/socket`;
    const child = new Deno.Command(XENSTORED, {
      args: ["-N", "--internal-db=off"],
      env: {
        XENSTORED_ROOTDIR: dir,
        XENSTORED_RUNDIR: dir,
        XENSTORED_PATH: socket,
        XS_SHIM_SOCKET: socket,
        LD_PRELOAD: SHIM,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let c: WireClient | null = null;
      for (let i = 0; i < 200 && c === null; i++) {
        try {
          c = await WireClient.connect(socket);
        } catch {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      assert.ok(c !== null, "cxenstored did not serve its socket");
      const ok = async (type: number, payload: string) => {
        const r = await c!.request(type, payload);
        assert.equal(r.type, type, `${payload.split("\0")[0]}: ${r.payload}`);
      };
      const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
      await ok(XS.WRITE, "/local/domain/0/name\0Domain-0");
      await ok(XS.WRITE, `/bin\0${all}`);
      for (let i = 0; i < 40; i++) await ok(XS.WRITE, `/many/k${i}\0v${i}`);
      await ok(XS.MKDIR, "/empty\0");
      await ok(XS.SET_PERMS, "/many\0n0\0r0\0");
      await ok(XS.RM, "/many/k7\0");
      c.close();
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    const r = readXenstoredTdb(`${dir}/tdb`);
    assert.equal(r.layout, "gen");
    const got = contents(r.root);
    assert.deepEqual(got["/local/domain/0/name"], ["Domain-0", "n0\0"]);
    assert.equal(got["/bin"][0], Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join(""));
    assert.deepEqual(got["/many"], ["", "n0\0r0\0"]);
    assert.deepEqual(got["/empty"], ["", "n0\0"]);
    assert.equal(got["/many/k7"], undefined);
    assert.deepEqual(got["/many/k39"], ["v39", "n0\0"]);
    assert.equal(Object.keys(got).filter((p) => p.startsWith("/many/")).length, 39);
    assert.deepEqual(got["/tool/xenstored"], ["", "n0\0"]);
    assertSound(r.root, r.gen);
    assert.ok(r.gen > 40, `generations come along (counter ${r.gen})`);
  }),
});

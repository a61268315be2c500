// Storage modules in C (ffi/dxenstored_backend.h): the `so:` spec, refusals at load (not a module,
// another ABI version, a missing symbol), and a deliberately faulty module (tests/backend/
// faulty_backend.c, a shim in front of the LMDB module) that fails open, load, apply, sync and
// compaction or returns garbage lengths. Each time: the commit is refused with EIO/ENOSPC or the start
// is refused with a clear message, and the real store behind the shim is never damaged.
import { ensureModule } from "../../backends/build.ts";
import { BackendError, formatBackendSpec, parseBackendSpec } from "../../src/backend/backend.ts";
import { NativeBackend, type NativeBackendOptions } from "../../src/backend/native.ts";
import { flatten } from "../../src/backend/records.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { setLogSink } from "../../src/common/log.ts";
import { initialRoot } from "../../src/store/database.ts";
import assert from "../helpers/assert.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { assertSameTree, Harness, ReplyError } from "./harness.ts";
import { moduleOrSkip } from "./modules.ts";

const LMDB = await moduleOrSkip("lmdb");
const faultySpec = (name: string, defines: string[] = []) => ({
  source: "tests/backend/faulty_backend.c",
  output: `build/backends/test/${name}.so`,
  libs: [],
  debianPackages: ["gcc"],
  defines,
});
const FAULTY = LMDB === null ? null : await ensureModule(faultySpec("libfaulty"));
const ignore = LMDB === null;

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "dxs-native-" });
}

/** The faulty shim with `fault` in front of the LMDB store in `dir`. */
function faulty(fault: string, dir: string, opts: Partial<NativeBackendOptions> = {}): NativeBackend {
  return new NativeBackend(FAULTY!, `${fault}:${LMDB}:${dir}/lmdb`, opts);
}

function plain(dir: string, opts: Partial<NativeBackendOptions> = {}): NativeBackend {
  return new NativeBackend(LMDB!, `${dir}/lmdb`, opts);
}

/** A store with a few nodes, closed; returns its tree as the LMDB module reads it back. */
function seedStore(dir: string): ReturnType<typeof flatten> {
  const h = new Harness(plain(dir));
  h.write("/a", "1");
  h.write("/b/c", "\0binary\xff");
  h.setPerms("/b", ["n0", "r3"]);
  const root = h.root;
  h.close();
  return flatten(root);
}

function assertStoreHolds(dir: string, expected: ReturnType<typeof flatten>, msg: string): void {
  const h = new Harness(plain(dir));
  try {
    assert.deepEqual(flatten(h.root), expected, msg);
  } finally {
    h.close();
  }
}

Deno.test("so spec: library up to the first colon, the rest for the module", () => {
  assert.deepEqual(parseBackendSpec("so:/x/liba.so:/var/lib/a:b,map=9"), {
    kind: "so",
    library: "/x/liba.so",
    args: "/var/lib/a:b,map=9",
  });
  assert.deepEqual(parseBackendSpec("so:liba.so"), { kind: "so", library: "liba.so", args: "" });
  assert.ok(typeof parseBackendSpec("so:") === "string");
  assert.ok(typeof parseBackendSpec("so::x") === "string");
  for (const s of ["so:/x/liba.so:/d", "so:liba.so"]) {
    const p = parseBackendSpec(s);
    assert.ok(typeof p !== "string");
    assert.equal(formatBackendSpec(p), s);
  }
});

Deno.test({
  name: "so: a library that cannot be loaded, is no storage module, or speaks another ABI is refused at load",
  ignore,
  fn: async () => {
    const dir = tempDir();
    try {
      const refused = (b: NativeBackend, re: RegExp) =>
        assert.throws(() => b.load(), BackendError, (e) => re.test(e.message));
      refused(new NativeBackend(`${dir}/none.so`, ""), /cannot load .*none\.so.*No such file/);
      Deno.writeTextFileSync(`${dir}/text.so`, "not ELF");
      refused(new NativeBackend(`${dir}/text.so`, ""), /cannot load .*text\.so/);
      refused(
        new NativeBackend("libc.so.6", ""),
        /not a dxenstored storage module: missing dxs_backend_abi_version/,
      );
      const noSync = await ensureModule(faultySpec("libfaulty_nosync", ["FAULTY_NO_SYNC"]));
      refused(new NativeBackend(noSync, `none:${LMDB}:${dir}/s`), /missing dxs_backend_sync\b/);
      const v9 = await ensureModule(faultySpec("libfaulty_v999", ["FAULTY_ABI_VERSION=999"]));
      refused(
        new NativeBackend(v9, `none:${LMDB}:${dir}/s`),
        /built for storage module ABI version 999; this dxenstored speaks version 1/,
      );
      // The module's own refusals: bad arguments, a store in use.
      refused(new NativeBackend(LMDB!, ""), /cannot open the store: DXS_E_INVAL: lmdb: usage/);
      refused(new NativeBackend(LMDB!, `${dir}/s,map=x`), /DXS_E_INVAL: lmdb: bad map size/);
      const first = plain(dir);
      first.load();
      refused(plain(dir), /DXS_E_BUSY: .*in use by another daemon/);
      first.close();
      plain(dir).close(); // the lock went with the first
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so: a failing open or load, or garbage lengths, refuse the start and leave the store as it was",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      const expected = seedStore(dir);
      const cases: Array<[string, RegExp]> = [
        ["open", /cannot open the store: DXS_E_IO: faulty: simulated open failure/],
        ["load", /cannot read the store: DXS_E_CORRUPT: faulty: simulated damage/],
        ["load-used", /cannot read the store: DXS_E_BROKEN: wrote \d+ bytes into a buffer of \d+/],
        ["load-range", /DXS_E_RANGE asking for \d+ bytes, no larger than/],
        [
          "load-keylen",
          /malformed load batch \(batch 0: record 0: key length 2147483647\); the store was not changed/,
        ],
        ["load-overrun", /malformed load batch .*record 0: key \d+ \+ value \d+ bytes overrun the batch/],
      ];
      for (const [fault, re] of cases) {
        assert.throws(() => faulty(fault, dir).load(), BackendError, (e) => re.test(e.message), fault);
        // Refused without writing (no initial tree over it), and the lock was released.
        assertStoreHolds(dir, expected, `after ${fault}`);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so lmdb: a file that is not LMDB's, or is cut short, refuses the start (no SIGBUS, nothing written)",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      const h = new Harness(plain(dir));
      for (let i = 0; i < 200; i++) h.write(`/k${i}`, "v".repeat(500)); // some pages
      h.close();
      const data = Deno.readFileSync(`${dir}/lmdb/data.mdb`);
      Deno.writeFileSync(`${dir}/lmdb/data.mdb`, data.subarray(0, data.length / 2));
      assert.throws(
        () => plain(dir).load(),
        BackendError,
        (e) =>
          /DXS_E_CORRUPT: lmdb: .*data\.mdb is \d+ bytes, but its last page ends at \d+: truncated/.test(
            e.message,
          ),
      );
      assert.equal(Deno.statSync(`${dir}/lmdb/data.mdb`).size, data.length / 2, "left as it was");
      Deno.writeFileSync(`${dir}/lmdb/data.mdb`, new Uint8Array(data.length).fill(0x5a));
      assert.throws(
        () => plain(dir).load(),
        BackendError,
        (e) => /cannot open the store: DXS_E_CORRUPT: lmdb: /.test(e.message),
      );
      assert.ok(Deno.readFileSync(`${dir}/lmdb/data.mdb`).every((b) => b === 0x5a), "not overwritten");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so: a failed apply refuses that commit (EIO, ENOSPC); nothing of it is stored; later commits work",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      // Apply 1 is the initial tree, 2 the write of /a, 3 the transaction, 5 the write of /e.
      let h = new Harness(faulty("apply@3", dir));
      h.write("/a", "kept");
      const tx = h.start();
      h.write("/t/x", "1", tx);
      h.write("/t/y", "2", tx);
      assert.throws(() => h.end(tx), ReplyError, (e) => e.errno === "EIO");
      assert.throws(() => h.req(XS.READ, "/t/x\0"), ReplyError, (e) => e.errno === "ENOENT");
      h.write("/d", "after");
      const root = h.root;
      h.close();
      assertStoreHolds(dir, flatten(root), "after a failed apply");
      h = new Harness(faulty("nospc@1", dir)); // an existing store: no initial tree this time
      assert.throws(() => h.write("/full", "x"), ReplyError, (e) => e.errno === "ENOSPC");
      h.write("/notfull", "y");
      h.close();
      h = new Harness(plain(dir));
      assert.throws(() => h.req(XS.READ, "/full\0"), ReplyError, (e) => e.errno === "ENOENT");
      assert.equal(h.req(XS.READ, "/notfull\0"), "y");
      h.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so: DXS_E_BROKEN or an unknown status refuses that commit and every later one, reads go on",
  ignore,
  fn: () => {
    for (const fault of ["broken@2", "code@2"]) {
      const dir = tempDir();
      try {
        const h = new Harness(faulty(fault, dir));
        const before = h.root;
        assert.throws(() => h.write("/x", "1"), ReplyError, (e) => e.errno === "EIO", fault);
        assert.throws(() => h.write("/y", "2"), ReplyError, (e) => e.errno === "EIO", `${fault}: later`);
        assert.equal(h.req(XS.READ, "/tool/xenstored\0"), "");
        assertSameTree(h.root, before, fault);
        h.close();
        assertStoreHolds(dir, flatten(before), fault);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }
  },
});

Deno.test({
  name: "so: a message without NUL or with control characters is cut to the buffer and made printable",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      const b = faulty("garbage@2", dir);
      b.load();
      b.compact(initialRoot(0), 0); // apply 1: the initial tree
      const e = assert.throws(() => b.persistDomains([]), XsError, (e) => e.errno === "EIO"); // apply 2
      assert.ok(/domains: DXS_E_IO: \?[A-Z?]{500,}$/.test(e.message), e.message);
      assert.ok(e.message.length < 512 + 200, `cut to the buffer (${e.message.length} chars)`);
      b.persistDomains([]); // apply 3: forwarded, fine
      b.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so: a failed compaction is logged and the store stays in use",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      const logged: string[] = [];
      setLogSink((_p, level, msg) => logged.push(`${level} ${msg}`));
      let root;
      try {
        const h = new Harness(faulty("compact", dir, { compactBytes: 64 }));
        for (let i = 0; i < 4; i++) h.write(`/k${i}`, "v".repeat(40));
        root = h.root;
        h.close();
      } finally {
        setLogSink(null);
      }
      const failures = logged.filter((l) =>
        /^error .*compaction failed.*DXS_E_IO: faulty: simulated/.test(l)
      );
      assert.ok(failures.length >= 2, logged.join("\n"));
      assertStoreHolds(dir, flatten(root), "after failed compactions");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so group mode: a failed sync fails the gate; nothing it covered is acknowledged",
  ignore,
  fn: () => {
    const dir = tempDir();
    try {
      const b = faulty("sync@2", dir, { sync: "group:0" });
      const h = new Harness(b); // sync 1: the initial tree
      const d = b.deferredSync()!;
      h.write("/g", "1");
      assert.equal(d.unsynced(), 1);
      assert.throws(
        () => d.syncNow(),
        Error,
        (e) => /sync of 1 change sets failed: DXS_E_IO: faulty/.test(e.message),
      );
      assert.equal(d.durableSeq(), 1);
      assert.throws(() => d.syncNow(), Error, (e) => /not stored/.test(e.message), "stays failed");
      assert.throws(() => h.write("/h", "2"), ReplyError, (e) => e.errno === "EIO");
      h.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

async function readOrNull(c: WireClient, path: string): Promise<string | null> {
  const r = await c.request(XS.READ, `${path}\0`);
  return r.type === XS.ERROR ? null : r.payload;
}

Deno.test({
  name: "so daemon: refuses to start with the module's message; a failed group sync stops it unacknowledged",
  ignore,
  fn: async () => {
    const dir = tempDir();
    try {
      // Refused start: exit status 1, the reason on stderr.
      const v9 = await ensureModule(faultySpec("libfaulty_v999", ["FAULTY_ABI_VERSION=999"]));
      await assert.rejects(
        () => startDaemon({ args: ["--backend", `so:${v9}:none:${LMDB}:${dir}/lmdb`] }),
        Error,
        (e) => /exited \(code 1\)[^]*ABI version 999; this dxenstored speaks version 1/.test(e.message),
      );
      // A failed group sync: the write's reply is never sent, the daemon exits 1 and says why.
      const d = await startDaemon({
        args: ["--backend", `so:${FAULTY}:sync@2:${LMDB}:${dir}/lmdb`, "--sync=group:0"],
      });
      const c = await WireClient.connect(d.socket);
      await c.send(XS.WRITE, "/lost\0x");
      const reply = await c.recv(10000).catch((e) => e as Error);
      assert.ok(reply instanceof Error, `no reply to the unsynced write (got ${JSON.stringify(reply)})`);
      const st = await d.status;
      assert.equal(st.code, 1);
      assert.ok(
        /sync of 1 change sets failed: DXS_E_IO: faulty: simulated fsync failure/.test(d.stderr),
        d.stderr,
      );
      c.close();
      await d.stop().catch(() => {});
      // The store behind it is intact: the initial tree, without the write.
      const again = await startDaemon({ args: ["--backend", `so:${LMDB}:${dir}/lmdb`] });
      try {
        const c2 = await WireClient.connect(again.socket);
        assert.equal(await readOrNull(c2, "/lost"), null);
        assert.equal(await readOrNull(c2, "/tool/xenstored"), "");
        c2.close();
      } finally {
        await again.stop();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "so: dxenstored export|import move a whole store into and out of a module (CLI)",
  ignore,
  fn: async () => {
    const dir = tempDir();
    const cli = async (args: string[], stdin?: string) => {
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../../src/cli/main.ts", import.meta.url).pathname, ...args],
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (stdin !== undefined) {
        const w = p.stdin.getWriter();
        await w.write(new TextEncoder().encode(stdin));
        await w.close();
      }
      const o = await p.output();
      return {
        code: o.code,
        out: new TextDecoder().decode(o.stdout),
        err: new TextDecoder().decode(o.stderr),
      };
    };
    try {
      const h = new Harness(plain(`${dir}/a`));
      h.write("/x/y", "\x00\xff bytes");
      h.setPerms("/x", ["n0", "r5"]);
      h.backend.persistDomains!([{ domid: 4, ringGfn: 9, eventChannel: 2 }]);
      h.close();
      const spec = (d: string) => `so:${LMDB}:${dir}/${d}/lmdb`;
      const none = await cli(["export", "--backend", spec("nothing")]);
      assert.equal(none.code, 1);
      assert.ok(/no store at so:/.test(none.err), none.err);
      const out = await cli(["export", "--backend", spec("a")]);
      assert.equal(out.code, 0, out.err);
      assert.ok(out.out.includes('{"domain":{"domid":4'), out.out);
      const imp = await cli(["import", "--backend", spec("b"), "--sync", "group:0"], out.out);
      assert.equal(imp.code, 0, imp.err);
      const back = await cli(["export", "--backend", spec("b")]);
      assert.equal(back.out, out.out, "the same export, generations and domains included");
      const again = await cli(["import", "--backend", spec("b")], out.out);
      assert.equal(again.code, 1);
      assert.ok(/already holds a store/.test(again.err), again.err);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "so lmdb: a full map refuses commits with ENOSPC (group mode: or fails the group's sync); nothing acked is lost",
  ignore,
  fn: () => {
    for (const sync of ["always", "group:0"] as const) {
      const dir = tempDir();
      try {
        const b = new NativeBackend(LMDB!, `${dir}/lmdb,map=1`, { sync });
        const h = new Harness(b);
        const group = b.deferredSync();
        // Group mode: a reply counts as acknowledged only once its group's sync succeeded.
        const acked = new Map<string, string>();
        const held = new Map<string, string>();
        const syncGroup = () => {
          group?.syncNow();
          for (const [p, v] of held) acked.set(p, v);
          held.clear();
        };
        let refused = 0;
        let syncFailed = false;
        for (let i = 0; i < 2000 && refused < 3 && !syncFailed; i++) {
          const v = String.fromCharCode(65 + (i % 26)).repeat(1500);
          try {
            h.write(`/fill/k${i}`, v);
            held.set(`/fill/k${i}`, v);
          } catch (e) {
            if (!(e instanceof ReplyError)) throw e;
            assert.equal(e.errno, "ENOSPC", sync);
            refused++;
          }
          if (i % 4 === 3) {
            try {
              syncGroup(); // the group's commits around a refused one are all stored
            } catch (e) {
              // LMDB writes the free list at the parent's commit: near the map's end that can fail
              // there, the whole group unacknowledged (the daemon would stop), as SQLite's COMMIT.
              assert.ok(group !== null && /MDB_MAP_FULL/.test(String(e)), `${sync}: ${e}`);
              syncFailed = true;
            }
          }
        }
        assert.ok(refused > 0 || syncFailed, `${sync}: the map filled up`);
        if (!syncFailed) syncGroup();
        h.close();
        const r = new Harness(new NativeBackend(LMDB!, `${dir}/lmdb,map=1`));
        for (const [p, v] of acked) assert.equal(r.req(XS.READ, `${p}\0`), v, `${sync}: ${p}`);
        assert.ok(acked.size > 100, `${sync}: ${acked.size} acknowledged`);
        r.close();
        console.log(
          `${sync}: ${acked.size} acknowledged, ${refused} refused (ENOSPC), group sync failed: ${syncFailed}`,
        );
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }
  },
});

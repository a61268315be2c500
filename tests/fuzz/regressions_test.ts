// Regression tests for what the decoder fuzzer (tests/fuzz/) found, each as the smallest input that
// showed it (independent of seeds, which change whenever a target or a mutator does). Before the
// fixes, each of these either let an exception other than the decoder's typed error escape, or let
// a store that breaks the tree's invariants (src/store/check.ts) be loaded.
import assert from "../helpers/assert.ts";
import { BackendError, openDatabase } from "../../src/backend/backend.ts";
import { decodeDomains } from "../../src/backend/domains.ts";
import {
  ApplyError,
  applyOps,
  buildTree,
  DecodeError,
  decodePayload,
  encodePayload,
  frameRecord,
  KIND_COMMIT,
  KIND_SNAPSHOT,
} from "../../src/backend/records.ts";
import { SqliteBackend, stateFromRows } from "../../src/backend/sqlite.ts";
import { KvStoreReader } from "../../src/backend/kv_layout.ts";
import { encodeNodeRecord } from "../../src/backend/xs_tdb.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { Perms } from "../../src/store/perms.ts";
import { initialRoot } from "../../src/store/database.ts";
import { setLogSink } from "../../src/common/log.ts";

const P0 = Perms.of(0, 0);
const enc = new TextEncoder();
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("fuzz regression: decodeDomains on bytes that are not UTF-8 throws its plain Error, not a TypeError", () => {
  const e = assert.throws(() => decodeDomains(new Uint8Array([0x5b, 0xff, 0x5d])), Error);
  assert.equal(e.constructor, Error, `${e.name}: ${e.message}`);
  assert.ok(/not UTF-8 JSON/.test(e.message), e.message);
});

Deno.test("fuzz regression: file records naming an invalid node path are refused (ApplyError), not loaded", () => {
  for (
    const bad of [
      "/to ol",
      "/tool\xe9",
      "/a//b",
      "/a/",
      "",
      "a",
      "//a",
      "x/a",
      "/" + "x".repeat(3100),
      "/a=b",
    ]
  ) {
    const snap = decodePayload(encodePayload({
      kind: KIND_SNAPSHOT,
      gen: 1,
      epoch: 1,
      ops: [{ op: "put", path: "/", value: "", perms: P0, gen: 0 }, {
        op: "put",
        path: bad,
        value: "",
        perms: P0,
        gen: 1,
      }],
    }));
    assert.throws(() => buildTree(snap.ops as never), ApplyError, undefined, JSON.stringify(bad));
    const commit = decodePayload(encodePayload({
      kind: KIND_COMMIT,
      gen: 2,
      epoch: 0,
      ops: [{ op: "put", path: bad, value: "v", perms: P0, gen: 2 }],
    }));
    assert.throws(() => applyOps(initialRoot(0), commit.ops), ApplyError, undefined, JSON.stringify(bad));
  }
});

Deno.test("fuzz regression: file records with a generation that is no safe integer ≥ 0 are refused", () => {
  for (const gen of [NaN, -1, 1.5, 2 ** 60, Infinity]) {
    const rec = encodePayload({ kind: KIND_COMMIT, gen, epoch: 0, ops: [] });
    assert.throws(() => decodePayload(rec), DecodeError, undefined, `counter ${gen}`);
    const op = decodePayload(encodePayload({
      kind: KIND_COMMIT,
      gen: 3,
      epoch: 0,
      ops: [{ op: "put", path: "/a", value: "", perms: P0, gen }],
    }));
    assert.throws(() => applyOps(initialRoot(0), op.ops), ApplyError, undefined, `node ${gen}`);
  }
});

Deno.test("fuzz regression: the file backend does not load a checksum-valid log record with a bad path", () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-fuzz-reg-" });
  setLogSink(() => {});
  try {
    // A real store, then a record appended by hand: correct frame and checksum, invalid node name.
    const b = new FileBackend(dir, { preallocBytes: 0 });
    openDatabase(b).write("/a", "1", (p) => p, 0);
    b.close();
    const frame = frameRecord(encodePayload({
      kind: KIND_COMMIT,
      gen: 5,
      epoch: 0,
      ops: [{ op: "put", path: "/bad name", value: "", perms: P0, gen: 5 }],
    }));
    const log = Deno.readFileSync(`${dir}/log`);
    const grown = new Uint8Array(log.length + frame.length);
    grown.set(log);
    grown.set(frame, log.length);
    Deno.writeFileSync(`${dir}/log`, grown);
    const again = new FileBackend(dir, { preallocBytes: 0 });
    try {
      assert.throws(() => again.load(), BackendError);
    } finally {
      again.close();
    }
  } finally {
    setLogSink(null);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("fuzz regression: SQLite rows with a bad path, generation or column type are a BackendError", () => {
  const row = (path: unknown, value: unknown, perms: unknown, gen: unknown) => ({ path, value, perms, gen });
  const root = row("/", new Uint8Array(0), "n0", 0);
  for (
    const [what, gen, rows] of [
      ["invalid name", 1, [root, row("/a b", new Uint8Array(0), "n0", 1)]],
      ["empty name", 1, [root, row("/a/", new Uint8Array(0), "n0", 1)]],
      ["counter not a number", "abc", [root]],
      ["negative counter", -2, [root]],
      ["node generation REAL", 1, [root, row("/a", new Uint8Array(0), "n0", 0.5)]],
      ["value TEXT", 1, [root, row("/a", "text", "n0", 1)]],
      ["path NULL", 1, [root, row(null, new Uint8Array(0), "n0", 1)]],
    ] as const
  ) {
    assert.throws(() => stateFromRows("sqlite:t", gen, rows, []), BackendError, undefined, what);
  }
  assert.throws(() => stateFromRows("sqlite:t", 1, [root], [{ record: 5 }]), BackendError);
  assert.equal(stateFromRows("sqlite:t", 7n, [row("/", new Uint8Array(0), "n0", 3n)], []).gen, 7);
});

Deno.test("fuzz regression: a damaged SQLite file is a BackendError, not SQLite's own exception", () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-fuzz-reg-" });
  setLogSink(() => {});
  try {
    const file = `${dir}/store.db`;
    const b = new SqliteBackend(file, { sync: "none" });
    const store = openDatabase(b);
    for (let i = 0; i < 200; i++) store.write(`/n${i}`, "v".repeat(100), (p) => p, 0);
    b.close();
    const db = Deno.readFileSync(file);
    // The second page zeroed: opening works, a statement fails inside SQLite ("database disk image
    // is malformed"), with or without --recover.
    db.fill(0, 4096, 8192);
    Deno.writeFileSync(file, db);
    for (const recover of [false, true]) {
      const again = new SqliteBackend(file, { sync: "none", recover });
      try {
        assert.throws(() => again.load(), BackendError);
      } finally {
        again.close();
      }
    }
  } finally {
    setLogSink(null);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("fuzz regression: a TDB store's generation counter must be plain decimal (not -2, 1e3, empty)", () => {
  for (const counter of ["-2", "1e3", "", " 5", "0x10"]) {
    const reader = new KvStoreReader("tdb:t", false);
    reader.add(bytes("dxenstored:format"), enc.encode("1"));
    reader.add(bytes("dxenstored:gen"), enc.encode(counter));
    reader.add(bytes("/"), encodeNodeRecord("", P0, 0));
    assert.throws(() => reader.finish(), BackendError, undefined, JSON.stringify(counter));
  }
});

Deno.test("a damaged SQLite file whose counter row is lost is not taken for a fresh store (nothing overwritten)", () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-fuzz-reg-" });
  setLogSink(() => {});
  try {
    const file = `${dir}/store.db`;
    const b = new SqliteBackend(file, { sync: "none" });
    const store = openDatabase(b);
    for (let i = 0; i < 5; i++) store.write(`/n${i}`, "v", (p) => p, 0);
    b.close();
    // What a lost row looks like to the loader.
    const { DatabaseSync } = sqlite;
    const raw = new DatabaseSync(file);
    raw.exec("DELETE FROM meta");
    raw.close();
    const strict = new SqliteBackend(file, { sync: "none" });
    try {
      assert.throws(() => strict.load(), BackendError);
    } finally {
      strict.close();
    }
    const recover = new SqliteBackend(file, { sync: "none", recover: true });
    try {
      const st = recover.load();
      assert.ok(st !== null, "loaded, not fresh");
      assert.ok(st.gen >= 5);
    } finally {
      recover.close();
    }
  } finally {
    setLogSink(null);
    Deno.removeSync(dir, { recursive: true });
  }
});

const SQLITE_MODULE = "node:sqlite";
const sqlite = (await import(SQLITE_MODULE)) as {
  DatabaseSync: new (path: string) => { exec(sql: string): void; close(): void };
};

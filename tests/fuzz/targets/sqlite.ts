// The SQLite backend's readers (src/backend/sqlite.ts).
//
//  - "sqlite-rows": stateFromRows, the conversion of the three tables' rows into the store, given rows
//    whose columns hold anything SQLite can return (TEXT, BLOB, INTEGER, REAL, NULL, BigInt), as a
//    damaged or hand-edited file would. Only BackendError may escape; a loaded tree must be sound.
//    Input: a field stream — u8 tag (0 TEXT, 1 BLOB, 2 INTEGER, 3 REAL, 4 NULL, 5 BigInt, ≥ 6: the
//    rest are domain rows), u16 length, bytes. The first field is the generation counter, then
//    (path, value, perms, gen) per node row.
//  - "sqlite-file": a mutated database file opened by SqliteBackend.load (SQLite's own corruption
//    handling and our integrity check included): BackendError only. Slow (a file per case).
import { latin1 } from "../../../src/common/latin1.ts";
import { BackendError, openDatabase } from "../../../src/backend/backend.ts";
import { Perms } from "../../../src/store/perms.ts";
import { SqliteBackend, stateFromRows } from "../../../src/backend/sqlite.ts";
import { checkLoaded, type Target } from "../engine.ts";

const enc = new TextEncoder();

function field(tag: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(3 + data.length);
  b[0] = tag;
  b[1] = data.length & 0xff;
  b[2] = data.length >>> 8;
  b.set(data, 3);
  return b;
}
const text = (s: string) => field(0, Uint8Array.from(s, (c) => c.charCodeAt(0)));
const blob = (s: string) => field(1, Uint8Array.from(s, (c) => c.charCodeAt(0)));
const int = (n: number) => {
  const d = new Uint8Array(8);
  new DataView(d.buffer).setFloat64(0, n, true);
  return field(2, d);
};

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Decode a field stream into (gen, node rows, domain rows). */
function decodeFields(input: Uint8Array): { gen: unknown; rows: unknown[]; domains: unknown[] } {
  const values: unknown[] = [];
  const domains: unknown[] = [];
  let o = 0;
  let inDomains = false;
  while (o + 3 <= input.length) {
    const tag = input[o];
    const len = input[o + 1] | (input[o + 2] << 8);
    const d = input.subarray(o + 3, Math.min(input.length, o + 3 + len));
    o += 3 + len;
    if (tag >= 6) inDomains = true;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const num = d.length >= 8 ? dv.getFloat64(0, true) : d.length;
    const v = tag % 6 === 0
      ? latin1(d)
      : tag % 6 === 1
      ? d.slice()
      : tag % 6 === 2
      ? Math.trunc(num)
      : tag % 6 === 3
      ? num
      : tag % 6 === 4
      ? null
      : BigInt(Math.trunc(Number.isFinite(num) ? num : 0));
    if (inDomains) domains.push({ record: v });
    else values.push(v);
  }
  const rows: unknown[] = [];
  for (let i = 1; i + 4 <= values.length; i += 4) {
    rows.push({ path: values[i], value: values[i + 1], perms: values[i + 2], gen: values[i + 3] });
  }
  return { gen: values[0], rows, domains };
}

export const sqliteRowsTarget: Target = {
  name: "sqlite-rows",
  contract: "SQLite rows → store (stateFromRows): BackendError only",
  corpus() {
    const row = (p: string, v: string, perms: string, g: number) => [text(p), blob(v), text(perms), int(g)];
    const domain = field(
      6,
      enc.encode(JSON.stringify({ domid: 5, ringGfn: 4096, eventChannel: 7, extra: { features: 7 } })),
    );
    return [
      concat([
        int(20),
        ...row("/", "", "n0", 0),
        ...row("/local", "", "n0", 1),
        ...row("/local/domain", "", "n0", 2),
        ...row("/local/domain/5", "\x00\xffbin", "n5 r7", 3),
        ...row("/local/domain/5/data", "v".repeat(200), "b5", 4),
        ...row("/tool", "", "n0", 5),
        domain,
      ]),
      concat([int(1), ...row("/", "", "n0", 0), ...row("/a", "x", "r0 w3", 1)]),
    ];
  },
  run(input) {
    const { gen, rows, domains } = decodeFields(input);
    const st = stateFromRows("sqlite:fuzz", gen, rows, domains);
    checkLoaded(st.root, st.gen, "a loaded store");
  },
  expected: (e) => e instanceof BackendError,
  ciCases: 10_000,
};

// ---- whole database files -------------------------------------------------------------------------

const TMP = (() => {
  try {
    return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
})();

let valid: Uint8Array | null = null;

/** A small valid database, written by the backend itself. */
function validFile(): Uint8Array {
  if (valid !== null) return valid;
  const dir = Deno.makeTempDirSync({ dir: TMP, prefix: "dxs-fuzz-sqlite-" });
  try {
    const file = `${dir}/store.db`;
    const b = new SqliteBackend(file, { sync: "none" });
    const db = openDatabase(b);
    for (const [p, v] of [["/local/domain/5/data", "\x00\xff"], ["/a/b/c", "v".repeat(100)], ["/x", ""]]) {
      db.write(p, v, (pp) => pp, 0);
    }
    db.setPerms("/x", Perms.of(0, 1, [{ domid: 5, bits: 3 }]), Perms.of(0, 0), 0);
    db.remove("/a/b", 0);
    b.persistDomains([{ domid: 5, ringGfn: 4096, eventChannel: 7 }]);
    b.close();
    valid = Deno.readFileSync(file);
    return valid;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

export const sqliteFileTarget: Target = {
  name: "sqlite-file",
  contract: "SqliteBackend.load of a mutated database file (BackendError only)",
  corpus() {
    return [validFile()];
  },
  run(input) {
    const dir = Deno.makeTempDirSync({ dir: TMP, prefix: "dxs-fuzz-sqlite-" });
    try {
      const file = `${dir}/store.db`;
      Deno.writeFileSync(file, input);
      const b = new SqliteBackend(file, { sync: "none", recover: input.length % 2 === 1 });
      try {
        const st = b.load();
        if (st !== null) checkLoaded(st.root, st.gen, "a loaded store");
      } finally {
        b.close();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  expected: (e) => e instanceof BackendError,
  ciCases: 60,
};

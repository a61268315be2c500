// The tree's structure, checked (docs/architecture.md): imports point one way between the folders of
// src/ (and ffi/), no source file is over 600 lines, libc is bound once, and the daemon's modules keep
// no mutable state at module level. Each check reads the files as they are, so a change that breaks
// the structure fails here with the offending file and line.
import assert from "../helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * What each layer may import besides itself. `wire` is src/protocol/wire.ts (xs_wire.h: pure data,
 * importable from everywhere); `protocol` is the rest of src/protocol (framing, request parsing).
 * The direction, top to bottom: cli → transport → dispatch → {policy, quota, domains} → {txn, watch,
 * backend, xen} → store → common; observe, memory and client sit beside them.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  common: [],
  wire: ["common"],
  ffi: [],
  store: ["common", "wire"],
  txn: ["common", "store"],
  watch: ["store"],
  policy: ["common", "store"],
  protocol: ["common", "wire"],
  backend: ["common", "ffi", "store", "wire"],
  xen: ["common", "ffi", "wire"],
  quota: ["common", "store", "txn", "watch", "wire"],
  domains: ["backend", "common", "store", "watch", "wire", "xen"],
  dispatch: ["common", "domains", "policy", "protocol", "quota", "store", "txn", "watch", "wire", "xen"],
  transport: ["common", "dispatch", "domains", "ffi", "protocol", "watch", "wire", "xen"],
  // The storage metrics observe the backend through its StorageObserver interface (types only).
  observe: ["backend", "common", "dispatch", "protocol", "quota", "store", "watch", "wire"],
  // V8's heap and collector, malloc_trim: below everything but ffi; only the CLI's assembly uses it.
  memory: ["ffi"],
  client: ["common", "protocol", "wire", "xen"],
  migration: ["backend", "common", "store", "wire"],
  // Live update stands between the socket transport and the core (the transport's connection handler,
  // built by the CLI's assembly): it reads the core's state and writes/reads migration streams.
  // Rings are handed to the domain registry (domains/adopt_rings.ts) and the platform (xen), quota values
  // to the quota module, the plugins' state to the policy manager (DX_POLICY): all below dispatch,
  // which live_update already sits above.
  live_update: [
    "backend",
    "common",
    "dispatch",
    "domains",
    "ffi",
    "migration",
    "policy",
    "protocol",
    "quota",
    "store",
    "watch",
    "wire",
    "xen",
  ],
  cli: [
    "backend",
    "common",
    "dispatch",
    "domains",
    "ffi",
    "live_update",
    "memory",
    "observe",
    "policy",
    "protocol",
    "quota",
    "store",
    "transport",
    "wire",
    "xen",
  ],
};

function layerOf(rel: string): string {
  if (rel.startsWith("ffi/")) return "ffi";
  if (rel === "src/protocol/wire.ts") return "wire";
  const parts = rel.split("/");
  if (parts[0] !== "src" || parts.length < 3) throw new Error(`${rel}: not in a layer`);
  return parts[1];
}

/** Every file under `dir` (relative to the repository) whose name ends with one of `exts`. */
function files(dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(ROOT + rel)) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      else if (e.isFile && exts.some((x) => e.name.endsWith(x))) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

function normalize(path: string): string {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "..") out.pop();
    else if (c !== "." && c !== "") out.push(c);
  }
  return out.join("/");
}

/** The relative imports of a source file: [line number, target path relative to the repository]. */
function importsOf(rel: string): Array<[number, string]> {
  const dir = rel.slice(0, rel.lastIndexOf("/"));
  const out: Array<[number, string]> = [];
  const text = Deno.readTextFileSync(ROOT + rel);
  // Static imports and re-exports (possibly spanning lines), and dynamic import("...").
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)"(\.{1,2}\/[^"]+)"/g;
  for (const m of text.matchAll(re)) {
    const line = text.slice(0, m.index).split("\n").length;
    out.push([line, normalize(`${dir}/${m[1]}`)]);
  }
  return out;
}

Deno.test("imports point one way between the layers of src/ and ffi/", () => {
  const sources = [...files("src", [".ts"]), ...files("ffi", [".ts"])];
  assert.ok(sources.length > 100, `found the sources (${sources.length})`);
  const wrong: string[] = [];
  for (const rel of sources) {
    const from = layerOf(rel);
    const allowed = ALLOWED[from];
    if (allowed === undefined) {
      wrong.push(`${rel}: layer "${from}" has no entry in ALLOWED (add one, and to docs/architecture.md)`);
      continue;
    }
    for (const [line, target] of importsOf(rel)) {
      if (!target.startsWith("src/") && !target.startsWith("ffi/")) continue;
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) {
        wrong.push(`${rel}:${line}: ${from} imports ${to} (${target})`);
      }
    }
  }
  assert.deepEqual(wrong, [], `imports against the direction:\n${wrong.join("\n")}`);
});

Deno.test("the import check sees a wrong import (store importing the dispatcher)", () => {
  // The checker itself: a store module importing upwards must be reported.
  const from = layerOf("src/store/tree.ts");
  const to = layerOf(normalize("src/store/../dispatch/core.ts"));
  assert.equal(from, "store");
  assert.equal(to, "dispatch");
  assert.ok(!ALLOWED[from].includes(to));
  assert.ok(!ALLOWED.txn.includes("policy") && !ALLOWED.watch.includes("transport"));
  assert.ok(!ALLOWED.domains.includes("dispatch") && !ALLOWED.domains.includes("transport"));
  assert.ok(!ALLOWED.quota.includes("dispatch") && !ALLOWED.quota.includes("protocol"));
});

Deno.test("no source file is over 600 lines", () => {
  const dirs = ["src", "ffi", "tests", "bench", "e2e", "conformance", "packaging", "backends", "policies"];
  const over: string[] = [];
  for (const d of dirs) {
    try {
      Deno.statSync(ROOT + d);
    } catch {
      continue;
    }
    for (const rel of files(d, [".ts", ".c", ".h", ".rs", ".py", ".sh"])) {
      const lines = Deno.readTextFileSync(ROOT + rel).split("\n").length - 1;
      if (lines > 600) over.push(`${rel}: ${lines} lines`);
    }
  }
  assert.deepEqual(
    over,
    [],
    `split these (a large declarative table can be a data module):\n${over.join("\n")}`,
  );
});

Deno.test("libc is bound once, in ffi/libc.ts", () => {
  const opens: string[] = [];
  for (const d of ["src", "ffi", "bench", "conformance"]) {
    try {
      Deno.statSync(ROOT + d);
    } catch {
      continue;
    }
    for (const rel of files(d, [".ts"])) {
      const text = Deno.readTextFileSync(ROOT + rel);
      if (/Deno\.dlopen\(\s*"libc\.so/.test(text)) opens.push(rel);
    }
  }
  assert.deepEqual(opens, ["ffi/libc.ts"]);
});

/**
 * Module-level `let`s that are allowed, and why: caches of something immutable loaded once, counters
 * that only make names unique, and the process-wide log configuration. Daemon state lives in objects
 * the daemon builds (src/cli/daemon.ts), never in a module.
 */
const MODULE_LETS: Readonly<Record<string, string>> = {
  "src/common/log.ts": "the process's log level and sink (set once at start, by tests' capture)",
  "src/common/assets.ts": "whether this is the built program (set once, before main, by its entry)",
  "src/memory/v8.ts": "node:v8, loaded on first use (an immutable module)",
  "src/cli/notify.ts": "NOTIFY_SOCKET, read once",
  "src/policy/kernel.ts": "the compiled policy kernel module (immutable)",
  "src/policy/legacy.ts": "the loaded legacy plugin (immutable)",
  "src/backend/tdb_ffi.ts": "libtdb, opened on first use",
  "src/backend/native_ffi.ts": "storage modules, opened on first use",
  "src/xen/sim/control.ts": "a counter for unique domain ids",
  "src/xen/sim/guest.ts": "a counter for unique socket names",
};

Deno.test("no mutable state at module level in the daemon's modules (beyond a listed few)", () => {
  const found: string[] = [];
  for (const rel of [...files("src", [".ts"]), ...files("ffi", [".ts"])]) {
    const lines = Deno.readTextFileSync(ROOT + rel).split("\n");
    lines.forEach((l, i) => {
      if (/^(let|var)\s/.test(l) && MODULE_LETS[rel] === undefined) {
        found.push(`${rel}:${i + 1}: ${l.trim()}`);
      }
    });
  }
  assert.deepEqual(found, [], `module-level mutable state:\n${found.join("\n")}`);
});

// What an operator sees, in-process: one rate-limited key=value line per refusal (and the
// quota_refusals counter), the access log in oxenstored's format with redaction, and metrics in
// Prometheus' text format written atomically.
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok } from "../helpers/core.ts";
import type { Core } from "../../src/dispatch/core.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { setLogSink } from "../../src/common/log.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { defaultOptions } from "../../src/cli/options.ts";
import type { Operations } from "../../src/cli/operations.ts";
import { buildCore } from "../../src/cli/daemon.ts";
import { accessDate, AccessLog, sanitize } from "../../src/observe/access_log.ts";
import { formatRefusal, quotaOf, RefusalLog } from "../../src/observe/refusals.ts";
import { Metrics, writeAtomic } from "../../src/observe/metrics.ts";
import { parsePrometheus } from "./prometheus.ts";

const noEnv = (_: string) => undefined;

/** A Core and its operator-facing side, built the way the daemon builds them (src/cli/daemon.ts). */
function newCore(argv: Partial<ReturnType<typeof defaultOptions>> = {}): { core: Core; ops: Operations } {
  return buildCore({ ...defaultOptions(noEnv), ...argv }, { policy: new LegacyPolicy() });
}

/** Capture log lines for the duration of `fn`. */
function captureLog<T>(fn: (lines: string[]) => T): T {
  const lines: string[] = [];
  setLogSink((prio, _level, msg) => lines.push(`<${prio}>${msg}`));
  try {
    return fn(lines);
  } finally {
    setLogSink(null);
  }
}

Deno.test("refusals: a quota refusal of a domU is one key=value line and one quota_refusals count", () => {
  captureLog((lines) => {
    const { core, ops } = newCore();
    try {
      const g = guest(core, 5);
      const max = core.limits.maxWatches;
      for (let i = 0; i < max; i++) {
        // A WATCH is answered, then its initial event follows: look at the reply only.
        const n = g.sink.sent.length;
        core.message(g.client, {
          type: MsgType.WATCH,
          reqId: i + 1,
          txId: 0,
          payload: `/local/domain/5/w${i}\0t${i}\0`,
        });
        assert.equal(g.sink.sent[n].type, MsgType.WATCH, `watch ${i} accepted`);
      }
      const before = lines.length;
      err(core, g, MsgType.WATCH, "/local/domain/5/over\0tok\0", "E2BIG");
      const refusals = lines.slice(before).filter((l) => l.includes("refused"));
      assert.equal(refusals.length, 1, `exactly one line: ${JSON.stringify(lines.slice(before))}`);
      const l = refusals[0];
      assert.ok(l.startsWith("<4>refused domid=5 "), `warning priority, domain first: ${l}`);
      for (
        const kv of ["op=WATCH", "path=/local/domain/5/over", "errno=E2BIG", "quota=watches", `limit=${max}`]
      ) {
        assert.ok(l.includes(` ${kv}`), `${kv} in ${l}`);
      }
      assert.ok(/ used=\S+/.test(l), "used= field present");
      const m = parsePrometheus(ops.metrics.render());
      assert.equal(m.value("dxenstored_quota_refusals_total", { domid: "5", quota: "watches" }), 1);
      assert.equal(m.value("dxenstored_refusals_total", { errno: "E2BIG" }), 1);
      assert.equal(m.value("dxenstored_requests_total", { op: "WATCH", result: "E2BIG" }), 1);
      assert.equal(m.value("dxenstored_requests_total", { op: "WATCH", result: "ok" }), max);
    } finally {
      ops.stop();
    }
  });
});

Deno.test("refusals: EACCES of a guest is logged with its path; values never appear", () => {
  captureLog((lines) => {
    const { core, ops } = newCore();
    try {
      const d0 = dom0(core);
      ok(core, d0, MsgType.WRITE, "/secret\0password123");
      const g = guest(core, 7);
      err(core, g, MsgType.WRITE, "/secret\0stolen-value", "EACCES");
      const l = lines.filter((x) => x.includes("refused"));
      assert.equal(l.length, 1);
      assert.ok(l[0].includes("domid=7") && l[0].includes("op=WRITE") && l[0].includes("path=/secret"), l[0]);
      assert.ok(l[0].includes("quota=- limit=- used=-"), "no quota behind a permission refusal");
      assert.ok(!lines.join("\n").includes("stolen-value") && !lines.join("\n").includes("password123"));
    } finally {
      ops.stop();
    }
  });
});

Deno.test("refusals: rate-limited per domain, suppressed lines counted and reported", () => {
  let now = 0;
  const out: string[] = [];
  const log = new RefusalLog((l) => out.push(l), { burst: 3, intervalMs: 1000 }, () => now);
  const r = (domid: number) => ({
    domid,
    conn: `D${domid}`,
    op: "WRITE",
    path: "/x",
    errno: "EACCES",
    quota: null,
  });
  for (let i = 0; i < 10; i++) log.refused(r(1));
  log.refused(r(2));
  assert.equal(out.length, 4, "3 lines for domain 1, 1 for domain 2 (its own bucket)");
  assert.equal(log.suppressedTotal, 7);
  now = 1000;
  log.refused(r(1));
  assert.equal(out.length, 5);
  assert.ok(out[4].endsWith(" suppressed=7"), out[4]);
  for (let i = 0; i < 4; i++) log.refused(r(1));
  now = 100_000;
  log.flushSuppressed();
  assert.ok(out[out.length - 1].includes("domid=1 suppressed=4"), out[out.length - 1]);
  log.flushSuppressed();
  assert.equal(out.filter((l) => l.includes("suppressed=4")).length, 1, "reported once");
});

Deno.test("refusals: line format quotes unsafe values; quotaOf reads structured quota errors", () => {
  const line = formatRefusal({
    domid: 3,
    conn: "D3",
    op: "WRITE",
    path: "/a b\nc",
    errno: "ENOSPC",
    quota: { quota: "nodes", limit: 1000, used: 1001 },
  });
  assert.equal(
    line,
    'refused domid=3 conn=D3 op=WRITE path="/a b\\nc" errno=ENOSPC quota=nodes limit=1000 used=1001',
  );
  const limits = { watches: 128, transactions: 10, transactionNodes: 1024 };
  assert.deepEqual(quotaOf({ quota: "memory", limit: 5, used: 6 }, limits), {
    quota: "memory",
    limit: 5,
    used: 6,
  });
  assert.deepEqual(
    quotaOf({ quota: "nodes", detail: "nodes quota (1000) of domain 5: 1 new node(s)" }, limits),
    { quota: "nodes", limit: 1000, used: null },
  );
  // The domains' QuotaError: `wanted` is the usage the request would have reached.
  assert.deepEqual(
    quotaOf({ quota: "watches", limit: 3, wanted: 4, detail: "watches quota (3) ..." }, limits),
    {
      quota: "watches",
      limit: 3,
      used: 4,
    },
  );
  assert.deepEqual(quotaOf({ detail: "too many open transactions" }, limits), {
    quota: "transactions",
    limit: 10,
    used: 11,
  });
  assert.equal(quotaOf({ detail: "/some/path" }, limits), null);
});

Deno.test("access log: oxenstored's format, reads off by default, errors and events, redaction", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxaccess-" });
  try {
    const file = `${dir}/access.log`;
    const t = new Date("2026-11-25T13:15:46.984Z");
    const a = new AccessLog(file, undefined, () => t);
    const c = { id: 1, domid: 0, privileged: true };
    const g = { id: 9, domid: 5, privileged: false };
    a.newConnection(c);
    a.request(c, MsgType.WRITE, 1, "/t/a\x001", null);
    a.request(c, MsgType.TRANSACTION_END, 1, "T\0", null);
    a.request(c, MsgType.READ, 0, "/t/a\0", null); // reads: off
    a.request(c, MsgType.READ, 0, "/nope\0", "ENOENT"); // ENOENT of a read: off with reads
    a.request(g, MsgType.WRITE, 0, "/secret\0x", "EACCES");
    a.request(g, MsgType.WRITE, 0, "/local/domain/5/data/set_clipboard\0my password", null);
    a.request(c, MsgType.WATCH, 0, "/t\0tok\0", null);
    a.watchEvent(c, "/t", "tok");
    a.request(c, MsgType.CONTROL, 0, "print\0hello\0", null);
    a.print("hello");
    a.request(c, MsgType.WRITE, 0, 'odd\0"\\\n\x01\xff', null);
    a.endConnection(c);
    a.close();
    const text = Deno.readTextFileSync(file);
    const d = "[20261125T13:15:46.984Z]";
    assert.equal(
      text,
      [
        `${d}  A1           newconn   `,
        `${d}  A1.1         write     /t/a 1`,
        `${d}  A1.1         commit    `,
        `${d}  D5           write     /secret x`,
        `${d}  D5           error     EACCES `,
        `${d}  D5           write     /local/domain/5/data/set_clipboard [omitted]`,
        `${d}  A1           watch     /t tok `,
        `${d}  A1           w event   /t tok `,
        `${d}  A1           debug     print hello `,
        `${d}  =======>     debug     hello`,
        `${d}  A1           write     odd \\"\\\\\\n\\001\\255`,
        `${d}  A1           endconn   `,
        "",
      ].join("\n"),
    );
    assert.equal(accessDate(t), "20261125T13:15:46.984Z");
    assert.equal(sanitize("a\0b\tc"), "a b\\tc");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("access log: reads with readOps; off/on/setFile; lines cut at maxLineChars", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxaccess-" });
  try {
    const c = { id: 2, domid: 0, privileged: true };
    const a = new AccessLog(`${dir}/a.log`, {
      readOps: true,
      transactionOps: true,
      specialOps: true,
      redact: [],
      maxLineChars: 60,
    });
    a.request(c, MsgType.READ, 0, "/t/a\0", null);
    a.request(c, MsgType.READ, 0, "/nope\0", "ENOENT");
    a.request(c, MsgType.TRANSACTION_START, 0, "\0", null);
    a.request(c, MsgType.GET_DOMAIN_PATH, 0, "3\0", null);
    a.request(c, MsgType.WRITE, 0, "/long\0" + "x".repeat(200), null);
    a.off();
    a.request(c, MsgType.WRITE, 0, "/off\0", null);
    a.setFile(`${dir}/b.log`);
    a.request(c, MsgType.WRITE, 0, "/on\0", null);
    a.close();
    const lines = Deno.readTextFileSync(`${dir}/a.log`).split("\n");
    assert.ok(lines[0].endsWith("read      /t/a "));
    assert.ok(lines[1].endsWith("read      /nope "));
    assert.ok(lines[2].endsWith("error     ENOENT "));
    assert.ok(lines[3].endsWith("t start    "));
    assert.ok(lines[4].endsWith("getdomain 3 "));
    assert.equal(lines[5].length, 60, "cut");
    assert.ok(!lines.join("\n").includes("/off"));
    assert.ok(Deno.readTextFileSync(`${dir}/b.log`).includes("write     /on "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metrics: Prometheus text format (HELP, TYPE, escaped labels) parses back", () => {
  const m = new Metrics();
  m.add(() => [
    {
      name: "x_total",
      help: "a \\ help\nline",
      type: "counter",
      samples: [{ labels: { p: 'a"b\\c\nd' }, value: 3 }],
    },
    { name: "y", help: "gauge", type: "gauge", samples: [{ value: 1.5 }, { labels: { k: "v" }, value: -2 }] },
  ]);
  const text = m.render();
  assert.ok(text.includes('x_total{p="a\\"b\\\\c\\nd"} 3\n'), text);
  const p = parsePrometheus(text);
  assert.equal(p.value("x_total", { p: 'a"b\\c\nd' }), 3);
  assert.equal(p.value("y", {}), 1.5);
  assert.equal(p.types.get("x_total"), "counter");
  assert.equal(m.renderSamples("y").trim().split("\n").length, 2);
});

Deno.test("metrics: the daemon's families parse, and the file is replaced atomically", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxmetrics-" });
  const { core, ops } = newCore();
  try {
    const d0 = dom0(core);
    ok(core, d0, MsgType.WRITE, "/a\0b");
    const text = ops.metrics.render();
    const p = parsePrometheus(text);
    for (
      const name of [
        "dxenstored_requests_total",
        "dxenstored_transactions_committed_total",
        "dxenstored_transaction_conflicts_total",
        "dxenstored_watch_events_total",
        "dxenstored_connections",
        "dxenstored_domain_nodes",
        "dxenstored_domain_memory_bytes",
        "dxenstored_quota_limit",
        "dxenstored_process_resident_memory_bytes",
      ]
    ) assert.ok(p.types.has(name), `${name} present`);
    assert.equal(p.value("dxenstored_requests_total", { op: "WRITE", result: "ok" }), 1);
    assert.equal(p.value("dxenstored_domain_nodes", { domid: "0" }), 4);
    // stats (CONTROL) returns the same numbers as the file.
    const stats = ops.metrics.renderSamples("dxenstored_domain_nodes");
    assert.equal(stats.trim(), 'dxenstored_domain_nodes{domid="0"} 4');

    // Atomic replacement: a reader never sees a partial file; each write is a new inode (rename).
    const file = `${dir}/m.prom`;
    writeAtomic(file, text);
    const inodes = new Set<number>();
    for (let i = 0; i < 50; i++) {
      writeAtomic(file, text + `# write ${i}\n`);
      const got = Deno.readTextFileSync(file);
      assert.ok(got.startsWith(text) && got.endsWith(`# write ${i}\n`), "whole file");
      parsePrometheus(got);
      inodes.add(Deno.statSync(file).ino!);
    }
    assert.ok(inodes.size > 1, "replaced by rename, not rewritten in place");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.prom"], "no temporary left");
  } finally {
    ops.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

// The metrics an operator alerts on: request latency by message type and commit/sync durations as
// Prometheus histograms, the build's version, and storage backend failures — a write the disk refused
// is an error of the daemon (logged at error level, dxenstored_backend_errors_total), not a refusal of
// the client. In-process, then end to end with a daemon whose store is on a full tmpfs.
import assert from "../helpers/assert.ts";
import { dom0, err, ok } from "../helpers/core.ts";
import { buildCore } from "../../src/cli/daemon.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { setLogSink } from "../../src/common/log.ts";
import { StorageError, XsError } from "../../src/common/xs_error.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { openState } from "../../src/backend/backend.ts";
import { defaultOptions } from "../../src/cli/options.ts";
import { Histogram, Metrics } from "../../src/observe/metrics.ts";
import { StorageMetrics } from "../../src/observe/storage.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { parsePrometheus } from "./prometheus.ts";
import { DXENSTORED } from "./helpers.ts";

const noEnv = (_: string) => undefined;
const VERSION = JSON.parse(Deno.readTextFileSync(new URL("../../package.json", import.meta.url))).version;

function captureLog<T>(fn: (lines: string[]) => T): T {
  const lines: string[] = [];
  setLogSink((prio, _level, msg) => lines.push(`<${prio}>${msg}`));
  try {
    return fn(lines);
  } finally {
    setLogSink(null);
  }
}

Deno.test("metrics: a histogram counts at or below each bound, cumulatively, with +Inf, sum and count", () => {
  const h = new Histogram([0.001, 0.01, 0.1]);
  for (const v of [0.0005, 0.001, 0.002, 0.05, 3]) h.observe(v);
  const m = new Metrics();
  m.add(() => [{ name: "t_seconds", help: "test", type: "histogram", samples: h.samples({ op: "READ" }) }]);
  const text = m.render();
  assert.ok(text.includes("# TYPE t_seconds histogram\n"), text);
  const p = parsePrometheus(text);
  const bucket = (le: string) => p.value("t_seconds_bucket", { op: "READ", le });
  assert.deepEqual([bucket("0.001"), bucket("0.01"), bucket("0.1"), bucket("+Inf")], [2, 3, 4, 5]);
  assert.equal(p.value("t_seconds_count", { op: "READ" }), 5);
  assert.ok(Math.abs(p.value("t_seconds_sum", { op: "READ" }) - 3.0535) < 1e-9);
  assert.throws(() => new Histogram([1, 1]));
});

Deno.test("metrics: request latency by message type, and the build's version", () => {
  const { core, ops } = buildCore(defaultOptions(noEnv), {
    policy: new LegacyPolicy(),
    storage: new StorageMetrics(),
  });
  try {
    const c = dom0(core);
    for (let i = 0; i < 5; i++) ok(core, c, MsgType.WRITE, `/m/n${i}\0v`);
    for (let i = 0; i < 7; i++) ok(core, c, MsgType.READ, `/m/n${i % 5}\0`);
    err(core, c, MsgType.READ, "/m/none\0", "ENOENT");
    const p = parsePrometheus(ops.metrics.render());
    assert.equal(p.types.get("dxenstored_request_duration_seconds"), "histogram");
    assert.equal(p.value("dxenstored_request_duration_seconds_count", { op: "READ" }), 8, "errors too");
    assert.equal(p.value("dxenstored_request_duration_seconds_count", { op: "WRITE" }), 5);
    assert.equal(p.value("dxenstored_request_duration_seconds_bucket", { op: "READ", le: "+Inf" }), 8);
    assert.ok(p.value("dxenstored_request_duration_seconds_sum", { op: "READ" }) > 0);
    assert.ok(!p.samples.some((s) => s.labels.op === "RM"), "only the types seen: bounded series");
    // `xenstore-control stats` prints samples without TYPE lines: still one group per sample name.
    const untyped = parsePrometheus(ops.metrics.renderSamples("dxenstored_request_duration"));
    assert.equal(untyped.value("dxenstored_request_duration_seconds_count", { op: "WRITE" }), 5);
    assert.equal(p.value("dxenstored_build_info", { version: VERSION }), 1);
    assert.equal(p.types.get("dxenstored_backend_commit_duration_seconds"), "histogram");
    assert.equal(p.types.get("dxenstored_backend_sync_duration_seconds"), "histogram");
    assert.equal(p.value("dxenstored_backend_errors_total", { stage: "commit", errno: "ENOSPC" }), 0);
  } finally {
    ops.stop();
  }
});

/** A backend whose disk fills up after `room` commits. */
class FillingBackend implements Backend {
  readonly name = "filling";
  constructor(private room: number) {}
  load() {
    return null;
  }
  persist(): void {
    if (this.room-- <= 0) {
      throw new XsError("ENOSPC", "filling: log write: No space left on device (os error 28)");
    }
  }
  wantsCompaction() {
    return false;
  }
  compact() {}
  close() {}
}

Deno.test("storage: a commit the disk refuses is logged at error level and counted, not as a refusal", () => {
  captureLog((lines) => {
    const storage = new StorageMetrics();
    const { db } = openState(new FillingBackend(3), storage);
    const { core, ops } = buildCore(defaultOptions(noEnv), { policy: new LegacyPolicy(), db, storage });
    try {
      const c = dom0(core);
      for (let i = 0; i < 3; i++) ok(core, c, MsgType.WRITE, `/d/n${i}\0v`);
      err(core, c, MsgType.WRITE, "/d/full\0v", "ENOSPC");
      err(core, c, MsgType.SET_PERMS, "/d/n0\0n0\0r1\0", "ENOSPC");
      assert.equal(lines.filter((l) => l.includes("refused")).length, 0, JSON.stringify(lines));
      const errors = lines.filter((l) => l.startsWith("<3>storage failed: stage=commit errno=ENOSPC: "));
      assert.equal(errors.length, 2, JSON.stringify(lines));
      assert.ok(
        errors[0].includes("a commit of domain 0, 1 change(s) (write /d/full) not stored"),
        errors[0],
      );
      assert.ok(errors[0].includes("No space left on device"), errors[0]);
      const p = parsePrometheus(ops.metrics.render());
      assert.equal(p.value("dxenstored_backend_errors_total", { stage: "commit", errno: "ENOSPC" }), 2);
      assert.equal(p.value("dxenstored_backend_errors_total", { stage: "commit", errno: "EIO" }), 0);
      assert.equal(p.value("dxenstored_requests_total", { op: "WRITE", result: "ENOSPC" }), 1);
      assert.ok(
        !p.samples.some((s) => s.name === "dxenstored_refusals_total" && s.labels.errno === "ENOSPC"),
      );
      assert.equal(p.value("dxenstored_backend_commit_duration_seconds_count", {}), 3, "stored commits");
      assert.equal(core.db.root.child("d")?.child("full"), undefined, "nothing applied");
    } finally {
      ops.stop();
    }
  });
});

Deno.test("storage: error lines are rate-limited; the counter counts every failure", () => {
  const lines: string[] = [];
  let now = 0;
  const s = new StorageMetrics((l) => lines.push(l), () => now);
  const e = new StorageError("EIO", "x");
  for (let i = 0; i < 50; i++) s.failed("commit", e, "a commit");
  assert.equal(lines.length, 10);
  now = 2500;
  s.failed("compact", e, "compaction");
  assert.equal(lines.length, 11);
  assert.ok(lines[10].includes("(40 more since the last line)"), lines[10]);
  assert.equal(s.errorTotal, 51);
});

/** A small tmpfs (root only), or null. */
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

Deno.test("storage: a daemon whose disk is full logs an error line and counts it in its metrics", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-full-" });
  const mnt = smallTmpfs(dir, "256k");
  if (mnt === null) {
    console.warn("skipped: cannot mount a tmpfs here (needs root)");
    Deno.removeSync(dir, { recursive: true });
    return;
  }
  const socket = `${dir}/sock`;
  const daemon = new Deno.Command(DXENSTORED, {
    args: ["--socket", socket, "--backend", `file:${mnt}/s`, "--sync", "always"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    let c: WireClient | null = null;
    for (let i = 0; i < 200 && c === null; i++) {
      try {
        c = await WireClient.connect(socket);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(c !== null, "the daemon serves");
    let errno = "";
    for (let i = 0; i < 1000 && errno === ""; i++) {
      const r = await c.request(XS.WRITE, `/fill/k${i}\0${"x".repeat(2000)}`);
      if (r.type === XS.ERROR) errno = r.payload.replace(/\0$/, "");
    }
    assert.equal(errno, "ENOSPC");
    const stats = await c.request(XS.CONTROL, "stats\0dxenstored_backend_errors\0");
    const p = parsePrometheus(stats.payload.replace(/\0$/, ""));
    assert.equal(p.value("dxenstored_backend_errors_total", { stage: "commit", errno: "ENOSPC" }), 1);
    c.close();
  } finally {
    daemon.kill("SIGTERM");
    const out = await daemon.output();
    const log = new TextDecoder().decode(out.stderr);
    new Deno.Command("umount", { args: [mnt] }).outputSync();
    Deno.removeSync(dir, { recursive: true });
    assert.ok(/<3>dxenstored: storage failed: stage=commit errno=ENOSPC: /.test(log), log);
    assert.ok(!/refused .*errno=ENOSPC/.test(log), log);
  }
});

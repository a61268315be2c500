// xenstore-control against dxenstored, byte-compared with Debian's cxenstored 4.17 (golden outputs
// captured through shared/anchors by tests/ops/golden/capture.ts): exit code, stdout, stderr and the
// raw CONTROL reply of every step. The one documented difference: dxenstored's command list has
// `stats`, `recent`, `policy` and `policy-reload`, so `help` and every "Command not supported" list have those lines too.
import assert from "../helpers/assert.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { CONTROL_STEPS, XENSTORE_CONTROL } from "./golden/steps.ts";
import { exists, waitFor } from "./helpers.ts";
import { parsePrometheus } from "./prometheus.ts";

interface GoldenStep {
  name: string;
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  raw: { type: number; payload: string } | null;
}

const golden: { reference: string; steps: GoldenStep[] } = JSON.parse(
  Deno.readTextFileSync(new URL("./golden/cxenstored-control.json", import.meta.url)),
);
const STATS_LINE = "stats\t[<metric-prefix> [<skip-lines>]]\nrecent\t\npolicy\t\npolicy-reload\t\n";

/** cxenstored's text with dxenstored's extra command listed before `help`. */
function withStats(text: string): string {
  return text.replace("help\t\n", STATS_LINE + "help\t\n");
}

const haveTool = exists(XENSTORE_CONTROL);

Deno.test({
  name: "control: every step matches cxenstored 4.17 byte for byte (xenstore-control and raw replies)",
  ignore: !haveTool,
  fn: async () => {
    await withDaemon(async (d) => {
      const byName = new Map(golden.steps.map((s) => [s.name, s]));
      for (const step of CONTROL_STEPS) {
        const args = step.args.map((a) => a.replaceAll("{dir}", d.dir));
        if (step.tool !== undefined) {
          const r = await runTool(step.tool, args, d.socket);
          assert.equal(r.code, 0, `${step.tool}: ${r.stderr}`);
          continue;
        }
        const g = byName.get(step.name);
        assert.ok(g !== undefined, `golden step ${step.name}`);
        if (g.raw !== null) {
          const c = await WireClient.connect(d.socket);
          try {
            const r = await c.request(0, args.map((a) => a + "\0").join(""));
            assert.equal(r.type, g.raw.type, `${step.name}: reply type`);
            assert.equal(r.payload, withStats(g.raw.payload), `${step.name}: raw reply`);
          } finally {
            c.close();
          }
        }
        const r = await runTool(XENSTORE_CONTROL, args, d.socket);
        assert.equal(r.code, g.code, `${step.name}: exit code (stderr ${JSON.stringify(r.stderr)})`);
        assert.equal(r.stdout, withStats(g.stdout), `${step.name}: stdout`);
        assert.equal(r.stderr, withStats(g.stderr), `${step.name}: stderr`);
      }
      // The side effects cxenstored's OK stands for.
      assert.ok(exists(`${d.dir}/trace.log`), "logfile opened the trace file");
      assert.ok(Deno.readTextFileSync(`${d.dir}/mem.txt`).includes("memory report"), "memreport <file>");
      assert.ok(
        Deno.readTextFileSync(`${d.dir}/trace.log`).includes("memory report"),
        "memreport to the trace",
      );
    });
  },
});

Deno.test({
  name:
    "control: print goes to the trace log; live-update of a program that is not dxenstored is refused clearly; stats answers",
  ignore: !haveTool,
  fn: async () => {
    await withDaemon(async (d) => {
      const trace = `${d.dir}/trace.log`;
      const x = (...a: string[]) => runTool(XENSTORE_CONTROL, a, d.socket);
      assert.equal((await x("logfile", trace)).code, 0);
      assert.equal((await x("print", "hello operator")).code, 0);
      assert.ok(Deno.readTextFileSync(trace).includes("=======>     debug     hello operator"));
      assert.equal((await x("log", "off")).code, 0);
      await x("print", "not logged");
      assert.ok(!Deno.readTextFileSync(trace).includes("not logged"), "log off stops the trace");
      const lu = await x("live-update", "/bin/true");
      assert.equal(lu.code, 3, `live-update: ${lu.stderr}`);
      assert.ok(lu.stderr.includes("File is not a xenstored dxenstored can hand over to"), lu.stderr);
      const st = await x("stats");
      assert.equal(st.code, 0, st.stderr);
      assert.ok(/^dxenstored_requests_total\{op="CONTROL",result="ok"\} \d+$/m.test(st.stdout), st.stdout);
      assert.ok(/^dxenstored_domain_nodes\{domid="0"\} 3$/m.test(st.stdout), "per-domain gauges");
      const only = await x("stats", "dxenstored_quota_limit");
      assert.ok(
        only.stdout.split("\n").filter((l) => l !== "").every((l) => l.startsWith("dxenstored_quota_limit")),
      );
      assert.ok(only.stdout.includes(`dxenstored_quota_limit{quota="nodes"} 1000`));
      const bogus = await x("stats", "a", "b");
      assert.equal(bogus.code, 3, "stats takes a prefix and a line count at most (EINVAL)");
      // Pages: skipping lines gives the rest of the listing.
      const page2 = await x("stats", "dxenstored_quota_limit", "2");
      assert.deepEqual(
        page2.stdout.split("\n").filter((l) => l !== ""),
        only.stdout.split("\n").filter((l) => l !== "").slice(2),
      );
    });
  },
});

Deno.test("metrics: --metrics-file is written periodically, parses, and agrees with `xenstore-control stats`", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxmetrics-" });
  const file = `${dir}/dx.prom`;
  try {
    await withDaemon(async (d) => {
      assert.equal((await runTool("xenstore-write", ["/m/a", "1", "/m/b", "2"], d.socket)).code, 0);
      // A file written after the writes shows them (each write replaces the file as a whole).
      let text = "";
      await waitFor("a metrics file with the writes", () => {
        try {
          text = Deno.readTextFileSync(file);
        } catch {
          return false;
        }
        return parsePrometheus(text).value("dxenstored_domain_nodes", { domid: "0" }) === 6;
      });
      const p = parsePrometheus(text);
      assert.ok(p.value("dxenstored_requests_total", { op: "WRITE", result: "ok" }) >= 2);
      const st = await runTool(XENSTORE_CONTROL, ["stats", "dxenstored_domain_nodes"], d.socket);
      assert.equal(st.stdout.trim(), 'dxenstored_domain_nodes{domid="0"} 6', "the same number over CONTROL");
      const all = parsePrometheus((await runTool(XENSTORE_CONTROL, ["stats"], d.socket)).stdout);
      assert.equal(
        all.value("dxenstored_quota_limit", { quota: "nodes" }),
        p.value("dxenstored_quota_limit", { quota: "nodes" }),
      );
    }, { args: ["--metrics-file", file, "--metrics-interval", "0.1"] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watches: no watch event follows an UNWATCH reply (xenstore-go panics on one)", async () => {
  await withDaemon(async (d) => {
    const c = await WireClient.connect(d.socket);
    const w = await WireClient.connect(d.socket);
    try {
      await c.request(XS.WRITE, "/u/x\0v");
      assert.equal((await w.request(XS.WATCH, "/u\0tok\0")).type, XS.WATCH);
      assert.equal((await w.recv()).type, XS.WATCH_EVENT, "initial event");
      // Writes queue events for the watcher; then UNWATCH: everything after its reply must be silent.
      for (let i = 0; i < 20; i++) await c.send(XS.WRITE, `/u/x\0${i}`);
      const unwatchId = await w.send(XS.UNWATCH, "/u\0tok\0");
      for (let i = 0; i < 20; i++) await c.recv();
      let seenReply = false;
      for (;;) {
        const r = await w.recv();
        if (r.reqId === unwatchId && r.type === XS.UNWATCH) {
          seenReply = true;
          break;
        }
        assert.equal(r.type, XS.WATCH_EVENT, "only events before the reply");
      }
      assert.ok(seenReply);
      for (let i = 0; i < 5; i++) await c.request(XS.WRITE, `/u/x\0after${i}`);
      // A round trip on the watcher's own connection: anything queued before it would come first.
      const r = await w.request(XS.READ, "/u/x\0");
      assert.equal(r.type, XS.READ, "no event between the UNWATCH reply and the next reply");
    } finally {
      c.close();
      w.close();
    }
  });
});

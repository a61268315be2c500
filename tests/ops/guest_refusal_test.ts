// A guest over the simulated Xen ring (a real daemon, `--xen=sim:<dir>`) runs into a quota set on the
// command line: the daemon logs exactly one refusal line for it, and the metrics file and
// `xenstore-control stats` count it under dxenstored_quota_refusals_total{domid,quota}.
import assert from "../helpers/assert.ts";
import { runTool } from "../helpers/daemon.ts";
import { XS } from "../helpers/wire.ts";
import { startSimXen } from "../xen/sim_harness.ts";
import { XENSTORE_CONTROL } from "./golden/steps.ts";
import { exists, waitFor } from "./helpers.ts";
import { parsePrometheus } from "./prometheus.ts";

Deno.test({
  name: "refusals: a simulated domU over its quota: one log line, counted in metrics and stats",
  ignore: !exists(XENSTORE_CONTROL),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxguest-" });
    const metrics = `${dir}/dx.prom`;
    try {
      await using x = await startSimXen(["-W", "3", "--metrics-file", metrics, "--metrics-interval", "0.1"]);
      const g = await x.introduce(7);
      for (let i = 0; i < 3; i++) {
        await g.watch(`data/w${i}`, `t${i}`);
        await g.nextEvent();
      }
      const r = await g.request(XS.WATCH, "data/over\0tok\0");
      assert.equal(r.type, XS.ERROR, "the 4th watch is refused");
      assert.equal(r.payload, "E2BIG\0");
      const line = () => x.daemon.stderr.split("\n").filter((l) => l.includes("refused domid=7"));
      await waitFor("the refusal line", () => line().length > 0);
      // One more request round trip: anything logged for the refusal is out by then.
      await g.read("name").catch(() => "");
      const lines = line();
      assert.equal(lines.length, 1, `exactly one line:\n${x.daemon.stderr}`);
      assert.ok(
        /^<4>dxenstored: refused domid=7 conn=D7 op=WATCH path=\/local\/domain\/7\/data\/over errno=E2BIG quota=watches limit=3 used=4$/
          .test(lines[0]),
        lines[0],
      );
      assert.ok(!x.daemon.stderr.includes("quota refused:"), "no second line from the quota module");
      await waitFor("the refusal in the metrics file", () => {
        try {
          return parsePrometheus(Deno.readTextFileSync(metrics))
            .value("dxenstored_quota_refusals_total", { domid: "7", quota: "watches" }) === 1;
        } catch {
          return false;
        }
      });
      const st = await runTool(
        XENSTORE_CONTROL,
        ["stats", "dxenstored_quota_refusals_total"],
        x.daemon.socket,
      );
      assert.equal(st.stdout.trim(), 'dxenstored_quota_refusals_total{domid="7",quota="watches"} 1');
      const q = await runTool(XENSTORE_CONTROL, ["quota", "7"], x.daemon.socket);
      assert.ok(/^watches +: +3$/m.test(q.stdout), `quota 7 shows the guest's watches:\n${q.stdout}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

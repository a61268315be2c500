// Live update dx → dx carries what Xen's stream has no record for (issue 16), on the simulated Xen with
// a guest's ring: the Chinese Wall's history of the guest (DX_POLICY) — a read the wall must refuse
// after the switch is refused, which a new program that started its plugins afresh would allow — and
// SET_FEATURE's values (DX_FEATURES), of an introduced domain and of one not introduced yet. A new
// program whose policy chain differs goes back to the old one, which serves on with its wall; so does one
// whose chinese-wall refuses the history after a config edit (the old one then keeps it by plugin name).
import assert from "../helpers/assert.ts";
import { XS } from "../helpers/wire.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { FEATURE_ERROR, FEATURE_RECONNECTION } from "../../src/protocol/wire.ts";
import { GuestClient } from "../../src/client/guest.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";
import { XENSTORE_CONTROL } from "../migration/cx_capture.ts";
import { exists, liveUpdate, simXen, SWITCH_MS } from "./sim_host.ts";

const SETS = "banks:a=/cw/bank-a banks:b=/cw/bank-b";

/** The guest's READ: "ok" or the error's name. */
async function read(g: GuestClient, path: string): Promise<string> {
  const m = await g.request(XS.READ, `${path}\0`);
  return m.type === XS.ERROR ? m.payload.replace(/\0$/, "") : "ok";
}

Deno.test({
  name:
    "live update dx → dx carries the Chinese Wall's history and SET_FEATURE values; another chain goes back",
  ignore: !exists(XENSTORE_CONTROL),
  sanitizeResources: false,
  fn: async () => {
    const conf = await Deno.makeTempFile({ prefix: "dxs-cw-", suffix: ".conf" });
    await Deno.writeTextFile(
      conf,
      `policy = legacy,chinese-wall\npolicy-config.chinese-wall.conflict-sets = ${SETS}\n`,
    );
    const { x, launcher, rundir } = await simXen(["--policy-config", conf]);
    const socket = x.daemon.socket;
    let g: GuestClient | null = null;
    try {
      // Domain 5: features restricted before INTRODUCE; domain 8: restricted, not introduced yet.
      const d5 = x.create(5);
      await x.toolstackNodes(5);
      await x.ok(MsgType.SET_FEATURE, `5\0${FEATURE_RECONNECTION}\0`);
      await x.ok(XS.INTRODUCE, `5\0${d5.gfn}\0${d5.port}\0`);
      g = new GuestClient(new SimGuest(x.dir, 5), { timeoutMs: SWITCH_MS });
      const d8 = x.create(8);
      await x.toolstackNodes(8);
      await x.ok(MsgType.SET_FEATURE, `8\0${FEATURE_ERROR}\0`);
      await x.ok(XS.WRITE, "/cw\0");
      await x.ok(XS.SET_PERMS, "/cw\0n0\0r5\0");
      for (const p of ["/cw/bank-a/k", "/cw/bank-b/k"]) await x.ok(XS.WRITE, `${p}\0v`);
      assert.equal(await read(g, "/cw/bank-a/k"), "ok");
      assert.equal(await read(g, "/cw/bank-b/k"), "EACCES", "walled off after bank-a");
      const pid = x.daemon.pid;

      // A new program with another chain must not serve: it goes back, the wall stands.
      const other = await liveUpdate(
        x,
        "-c",
        `--socket ${socket} --xen=sim:${x.dir} --policy legacy`,
        launcher,
      );
      assert.equal(other.code, 3, `${other.stdout}${other.stderr}\n${x.daemon.stderr}`);
      assert.ok(
        /live-update failed: cannot take over the policy plugins' state: .*the policy chain differs: the previous program ran legacy,chinese-wall, this one legacy/
          .test(other.stderr),
        other.stderr,
      );
      assert.equal(x.daemon.pid, pid);
      assert.equal(await read(g, "/cw/bank-b/k"), "EACCES", "the old program's wall after going back");

      // The switch: the history goes along.
      const lu = await liveUpdate(x, launcher);
      assert.equal(lu.code, 0, `${lu.stdout}${lu.stderr}\n${x.daemon.stderr}`);
      assert.equal(x.daemon.pid, pid);
      assert.equal(x.daemon.stderr.match(/live update: adopted/g)?.length, 2, x.daemon.stderr);
      assert.equal(await read(g, "/cw/bank-b/k"), "EACCES", "the new program's wall remembers domain 5");
      assert.equal(await read(g, "/cw/bank-a/k"), "ok");
      // SET_FEATURE's values: the introduced domain's, and the one set before INTRODUCE.
      assert.equal(await x.ok(MsgType.GET_FEATURE, "5\0"), `${FEATURE_RECONNECTION}\0`);
      assert.equal(await x.ok(MsgType.GET_FEATURE, "8\0"), `${FEATURE_ERROR}\0`);
      await x.ok(XS.INTRODUCE, `8\0${d8.gfn}\0${d8.port}\0`);
      assert.equal(await x.ok(MsgType.GET_FEATURE, "8\0"), `${FEATURE_ERROR}\0`, "applied at INTRODUCE");

      // The config edited before a switch so that the class of domain 5's history is gone: the new
      // chinese-wall refuses the state (state_load), the new program goes back, and the old one, whose
      // chain reads the same edited file, keeps the variables by plugin name as a reload would.
      await Deno.writeTextFile(
        conf,
        "policy = legacy,chinese-wall\npolicy-config.chinese-wall.conflict-sets = banks:b=/cw/bank-b banks:z=/cw/bank-a\n",
      );
      const edited = await liveUpdate(x, launcher);
      assert.equal(edited.code, 3, `${edited.stdout}${edited.stderr}\n${x.daemon.stderr}`);
      assert.ok(
        /live-update failed: .*chinese-wall cannot take its state: .*names the class banks:a, which conflict-sets no longer has/
          .test(edited.stderr),
        edited.stderr,
      );
      assert.ok(/cannot take its own state back .*kept the plugins' variables by name/.test(x.daemon.stderr));
      assert.equal(x.daemon.pid, pid);
      assert.equal(await read(g, "/cw/bank-b/k"), "EACCES", "domain 5's history still walls bank-b off");
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- daemon ---\n${x.daemon.stderr.slice(-8000)}`);
    } finally {
      g?.close();
      await x[Symbol.asyncDispose]();
      await Deno.remove(rundir, { recursive: true }).catch(() => {});
      await Deno.remove(conf).catch(() => {});
    }
  },
});

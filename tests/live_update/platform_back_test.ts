// Live update dx → dx, a new program that reads the state but cannot open the platform (issue 16): it
// goes back to the old program (src/live_update/fallback.ts), which serves on with every connection —
// sockets and guests' rings, their watches — and answers `xenstore-control` with the reason. Provoked
// honestly, by the new program's own command line (`-c`): `--xen real` on this host without Xen (the
// grant and foreign mapping devices cannot be opened: RealPlatform.open on the inherited event-channel
// descriptor fails), a simulated Xen folder that cannot be created and a store that cannot be opened.
// A good switch follows.
import assert from "../helpers/assert.ts";
import { errnoOf, splitNul, WireClient, XS } from "../helpers/wire.ts";
import { XENSTORE_CONTROL } from "../migration/cx_capture.ts";
import { exists, liveUpdate, simGuest, simXen } from "./sim_host.ts";

Deno.test({
  name: "live update dx → dx: a new program that cannot open the platform or store goes back; nothing lost",
  ignore: !exists(XENSTORE_CONTROL) || exists("/dev/xen/gntdev") || exists("/dev/xen/privcmd"),
  sanitizeResources: false,
  fn: async () => {
    const { x, launcher, rundir } = await simXen();
    const socket = x.daemon.socket;
    try {
      const g = await simGuest(x, 5);
      await g.watch("data", "gtok");
      assert.equal((await g.nextEvent())?.path, "data", "the initial event");
      const watcher = await WireClient.connect(socket);
      const writer = await WireClient.connect(socket);
      const idle = await WireClient.connect(socket);
      await watcher.request(XS.WATCH, "/pb\0tok\0");
      assert.equal((await watcher.recv()).type, XS.WATCH_EVENT);
      const pid = x.daemon.pid;
      // The guest keeps doing round trips through every switch.
      let stop = false;
      let rounds = 0;
      const busy = (async () => {
        for (let i = 0; !stop; i++) {
          await g.write(`data/k${i % 20}`, String(i));
          assert.equal(await g.read(`data/k${i % 20}`), String(i));
          rounds = i + 1;
        }
      })();
      const failing: Array<[string, RegExp]> = [
        [
          `--socket ${socket} --log-level debug --xen real`,
          /live-update failed: cannot attach to Xen \(--xen real\).*neither \/dev\/xen\/gntdev/,
        ],
        [
          `--socket ${socket} --log-level debug --xen=sim:${launcher}/xen`,
          /live-update failed: cannot open the simulated Xen \(--xen sim\)/,
        ],
        [
          `--socket ${socket} --log-level debug --xen=sim:${x.dir} --backend file:${launcher}/store`,
          /live-update failed: cannot open the store file:.*ENOTDIR/,
        ],
      ];
      for (const [i, [cmdline, reason]] of failing.entries()) {
        const lu = await liveUpdate(x, "-c", cmdline, launcher);
        assert.equal(lu.code, 3, `${lu.stdout}${lu.stderr}\n${x.daemon.stderr}`);
        assert.ok(reason.test(lu.stderr), lu.stderr);
        assert.equal(x.daemon.pid, pid);
        assert.ok(await x.daemon.alive(), "the old program serves on");
        // Every socket connection is still there: the watcher sees the writer's write, the idle one
        // answers, and the guest's ring (with its watch) is served.
        assert.equal(errnoOf(await writer.request(XS.WRITE, `/pb/w${i}\0v`)), null);
        assert.deepEqual(splitNul((await watcher.recv(20000)).payload), [`/pb/w${i}`, "tok"]);
        assert.equal(splitNul((await idle.request(XS.READ, `/pb/w${i}\0`)).payload)[0], "v");
        const before = rounds;
        while (rounds < before + 3) await new Promise((r) => setTimeout(r, 20));
      }
      const back = x.daemon.stderr.match(/live update failed in the new program/g);
      assert.equal(back?.length, failing.length, x.daemon.stderr);
      assert.ok(!exists(`${rundir}/state_dump`) && !exists(`${rundir}/state_dump.fallback`), "no dump left");
      // A good switch after the failed ones: the rings and every connection go along.
      const ok = await liveUpdate(x, launcher);
      assert.equal(ok.code, 0, `${ok.stderr}\n${x.daemon.stderr}`);
      stop = true;
      await busy;
      assert.ok(
        /live update: adopted 5 socket connection\(s\).* 1 ring\(s\) with 1 watch/.test(x.daemon.stderr),
      );
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/pb/after\0v")), null);
      assert.deepEqual(splitNul((await watcher.recv(20000)).payload), ["/pb/after", "tok"]);
      // The guest's watch fired once per write of its own, in order, through the failed switches too.
      const events: string[] = [];
      while (events.length < rounds) events.push((await g.nextEvent())!.path);
      assert.deepEqual(events, Array.from({ length: rounds }, (_, i) => `data/k${i % 20}`));
      assert.deepEqual(await g.eventsWithin(300), []);
      for (const c of [watcher, writer, idle]) c.close();
      g.close();
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- daemon ---\n${x.daemon.stderr.slice(-8000)}`);
    } finally {
      await x[Symbol.asyncDispose]();
      await Deno.remove(rundir, { recursive: true }).catch(() => {});
    }
  },
});

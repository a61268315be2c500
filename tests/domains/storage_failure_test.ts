// The domain manager when the disk refuses what it must store outside a request (found by the
// whole-daemon simulation, docs/simulation.md): a dead domain's clean-up commit and the domain records.
// Nothing may end the loop, and a dead domain's nodes must not wait for a new domain with its domid.
import assert from "../helpers/assert.ts";
import { err, ok } from "../helpers/core.ts";
import { request, rig } from "./harness.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { StorageError } from "../../src/common/xs_error.ts";

const T = MsgType;

/** A loop whose turn-end hooks the test runs (the manager retries there). */
function loop() {
  const hooks: Array<() => void> = [];
  return {
    addFd() {},
    removeFd() {},
    onTurnEnd: (fn: () => void) => void hooks.push(fn),
    onBeforeOutput: (fn: () => void) => void hooks.push(fn),
    outputTag: 0,
    durable: Number.MAX_SAFE_INTEGER,
    turnEnd: () => hooks.forEach((fn) => fn()),
  };
}

Deno.test("a death whose clean-up the disk refuses: retried every turn, the domid not reusable meanwhile", () => {
  const l = loop();
  let diskFull = false;
  const r = rig({}, l);
  r.core.db.beforeCommit(() => {
    if (diskFull) throw new StorageError("ENOSPC", "disk full (injected)");
  });
  r.create(4);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/4/data\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/4/data\0n4\0");
  r.guest(4);
  diskFull = true;
  r.xen.destroy(4);
  r.mgr.pump(); // would throw out of the loop before the fix
  l.turnEnd();
  assert.equal(r.mgr.isIntroduced(4), false, "the connection is gone");
  assert.equal(r.mgr.cleanupPending(4), true);
  assert.equal(ok(r.core, r.dom0, T.READ, "/local/domain/4/data\0"), "", "its nodes wait for the disk");
  r.xen.create(4); // a new domain with the same domid
  assert.equal(
    request(r.core, r.dom0, T.INTRODUCE, "4\0" + "1\0" + "7\0"),
    "EIO",
    "refused: it would inherit them",
  );
  diskFull = false;
  l.turnEnd(); // the retry
  assert.equal(r.mgr.cleanupPending(4), false);
  err(r.core, r.dom0, T.READ, "/local/domain/4/data\0", "ENOENT");
  assert.deepEqual(r.core.quotas.verify(), [], "accounting equals a recount");
  assert.equal(request(r.core, r.dom0, T.INTRODUCE, "4\0" + "1\0" + "7\0"), "OK\0", "the new domain, clean");
});

Deno.test("domain records that cannot be stored at a turn's end are retried, not thrown out of the loop", async () => {
  const l = loop();
  let full = false;
  let stored = 0;
  const r = rig({
    onDomainsChanged: () => {
      if (full) throw new StorageError("ENOSPC", "disk full (injected)");
      stored++;
    },
  }, l);
  r.create(5);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/5\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5\0n5\0");
  const g = r.guest(5);
  full = true;
  await g.watch("x", "t"); // the ring's watches changed: stored at the turn's end
  l.turnEnd(); // threw before the fix
  l.turnEnd();
  const before = stored;
  full = false;
  l.turnEnd();
  assert.equal(stored, before + 1, "stored once the disk has room");
  l.turnEnd();
  assert.equal(stored, before + 1, "and not again");
  assert.equal(r.mgr.records()[0].extra?.watches?.length, 1);
});

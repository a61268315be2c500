// The domain manager when the disk refuses what it must store outside a request (found by the
// whole-daemon simulation, docs/simulation.md): a dead domain's clean-up commit and the domain records.
// Nothing may end the loop, and a dead domain's nodes must not wait for a new domain with its domid.
import assert from "../helpers/assert.ts";
import { err, ok } from "../helpers/core.ts";
import { rig } from "./harness.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { StorageError } from "../../src/common/xs_error.ts";

const T = MsgType;

Deno.test("a death whose clean-up the disk refuses: retried every turn, the domid not reusable meanwhile", () => {
  let diskFull = false;
  const r = rig();
  r.core.db.beforeCommit(() => {
    if (diskFull) throw new StorageError("ENOSPC", "disk full (injected)");
  });
  r.create(4);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/4/data\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/4/data\0n4\0");
  r.guest(4);
  diskFull = true;
  r.xen.destroy(4);
  r.turn(); // VIRQ_DOM_EXC: the death's clean-up threw out of the loop before the fix
  assert.equal(r.domains.isIntroduced(4), false, "the connection is gone");
  assert.equal(r.domains.cleanupPending(4), true);
  assert.equal(ok(r.core, r.dom0, T.READ, "/local/domain/4/data\0"), "", "its nodes wait for the disk");
  r.xen.create(4); // a new domain with the same domid
  assert.equal(
    r.dom0.tryRequest(T.INTRODUCE, "4\0" + "1\0" + "7\0"),
    "E:EIO",
    "refused: it would inherit them",
  );
  diskFull = false;
  r.turn(); // the retry
  assert.equal(r.domains.cleanupPending(4), false);
  err(r.core, r.dom0, T.READ, "/local/domain/4/data\0", "ENOENT");
  assert.deepEqual(r.core.quotas.verify(), [], "accounting equals a recount");
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "4\0" + "1\0" + "7\0"), "OK", "the new domain, clean");
});

Deno.test("domain records that cannot be stored at a turn's end are retried, not thrown out of the loop", async () => {
  let full = false;
  let stored = 0;
  const r = rig({
    onDomainsChanged: () => {
      if (full) throw new StorageError("ENOSPC", "disk full (injected)");
      stored++;
    },
  });
  r.create(5);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/5\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5\0n5\0");
  const g = r.guest(5);
  full = true;
  await g.watch("x", "t"); // the ring's watches changed: stored before the turn's output (threw before the fix)
  r.turn();
  const before = stored;
  full = false;
  r.turn();
  assert.equal(stored, before + 1, "stored once the disk has room");
  r.turn();
  assert.equal(stored, before + 1, "and not again");
  assert.equal(r.domains.records()[0].extra?.watches?.length, 1);
});

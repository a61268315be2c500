// The simulated disk itself: what a crash keeps, what a failed fsync does, ENOSPC, the crash point.
import assert from "../helpers/assert.ts";
import { Rng } from "../helpers/rng.ts";
import { DeadProcessError, NO_FAULTS, SimDisk } from "./disk.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("sim disk: a crash keeps synced data and a prefix of the rest, in order", () => {
  for (let seed = 1; seed < 40; seed++) {
    const d = new SimDisk(new Rng(seed), { ...NO_FAULTS, tear: 0.5 });
    const f = d.openSync("/f", { write: true, create: true });
    f.writeSync(bytes("synced."));
    f.syncDataSync();
    d.openSync("/", { read: true }).syncSync(); // the name too
    f.writeSync(bytes("one."));
    f.writeSync(bytes("two."));
    d.crash();
    const after = text(d.readFileSync("/f"));
    assert.ok("synced.one.two.".startsWith(after) && after.startsWith("synced."), `seed ${seed}: ${after}`);
  }
});

Deno.test("sim disk: an unsynced name may vanish; a rename is all or nothing", () => {
  const seen = new Set<string>();
  for (let seed = 1; seed < 40; seed++) {
    const d = new SimDisk(new Rng(seed));
    const f = d.openSync("/a.tmp", { write: true, create: true });
    f.writeSync(bytes("x"));
    f.syncSync();
    d.renameSync("/a.tmp", "/a");
    d.crash();
    const names = d.files().map(([n]) => n).join(",");
    assert.ok(names === "" || names === "/a.tmp" || names === "/a", names);
    seen.add(names);
  }
  assert.equal(seen.size, 3, "each outcome happens for some seed");
});

Deno.test("sim disk: a failed fsync throws EIO and may lose what readers still see", () => {
  const d = new SimDisk(new Rng(3), { ...NO_FAULTS, fsyncFail: 1 });
  const f = d.openSync("/f", { write: true, create: true });
  f.writeSync(bytes("data"));
  assert.throws(() => f.syncDataSync(), Error, (e) => e.message.includes("Input/output error"));
  assert.equal(text(d.readFileSync("/f")), "data", "the page cache still has it");
});

Deno.test("sim disk: ENOSPC after what fits; the crash point kills every later operation", () => {
  const d = new SimDisk(new Rng(1), { ...NO_FAULTS, capacity: 3 });
  const f = d.openSync("/f", { write: true, create: true });
  assert.equal(f.writeSync(bytes("abcdef")), 3);
  assert.throws(() => f.writeSync(bytes("d")), Error, (e) => e.message.includes("No space left"));
  let crashed = 0;
  d.onCrash = () => crashed++;
  d.crashAt = d.ops + 1;
  assert.throws(() => f.syncSync(), DeadProcessError);
  assert.throws(() => d.readFileSync("/f"), DeadProcessError);
  assert.equal(crashed, 1);
  d.crash();
  assert.equal(d.dead, false, "a new process may start");
});

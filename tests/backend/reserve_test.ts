// The file backend's preallocation after a failed reserve (found by the whole-daemon simulation, seed 195,
// docs/simulation.md): records appended while the reserve could not be made must survive the next one.
import assert from "../helpers/assert.ts";
import { openState } from "../../src/backend/backend.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { Perms } from "../../src/store/perms.ts";
import { Rng } from "../helpers/rng.ts";
import { NO_FAULTS, SimDisk } from "../sim/disk.ts";

Deno.test("file: records appended after a failed reserve are not zero-filled by the next reserve", () => {
  const disk = new SimDisk(new Rng(1), NO_FAULTS);
  const open = () => new FileBackend("/s", { disk, preallocBytes: 512, compactBytes: 1 << 20 });
  const b = open();
  const { db } = openState(b);
  const perms = () => Perms.of(0, 0);
  // The disk is nearly full: the reserve (512 bytes of zeros) fails, records go in plainly.
  disk.faults = { ...NO_FAULTS, capacity: disk.used + 400 };
  for (let i = 0; i < 4; i++) db.write(`/n${i}`, "x".repeat(20), perms, 0);
  // Room again: the next reserve succeeds, and must start where the log really ends.
  disk.faults = NO_FAULTS;
  for (let i = 4; i < 200; i++) db.write(`/n${i}`, "x".repeat(40), perms, 0);
  disk.crash(); // nothing unsynced is lost with --sync always; the store must load as acknowledged
  const again = open();
  const loaded = again.load();
  assert.ok(loaded !== null);
  const names = new Set<string>();
  loaded.root.forEachChild((n) => void names.add(n));
  for (let i = 0; i < 200; i++) assert.ok(names.has(`n${i}`), `n${i} survived`);
  again.close();
});

// Client libraries other than libxenstore against the daemon: pyxs (Debian's python3-pyxs), which
// matches replies to requests by op and tx_id and rejects unexpected packets.
import assert from "../helpers/assert.ts";
import { withDaemon } from "../helpers/daemon.ts";
import { run } from "./helpers.ts";

const SCRIPT = new URL("./tools/pyxs_client.py", import.meta.url).pathname;
const havePyxs = (await run("/usr/bin/python3", ["-c", "import pyxs"]).catch(() => ({ code: 1 }))).code === 0;

Deno.test({
  name: "clients: pyxs (python3-pyxs) reads, writes, transacts and watches",
  ignore: !havePyxs,
  fn: async () => {
    await withDaemon(async (d) => {
      const r = await run("/usr/bin/python3", [SCRIPT, d.socket]);
      assert.equal(r.code, 0, `pyxs:\n${r.stdout}\n${r.stderr}`);
      for (const step of ["read/write/list/exists", "perms", "walk", "transactions", "watches"]) {
        assert.ok(r.stdout.includes(`ok ${step}\n`), `step ${step}:\n${r.stdout}`);
      }
      assert.ok(r.stdout.endsWith("done\n"));
    });
  },
});

if (!havePyxs) {
  console.log("clients_test: python3-pyxs not installed (apt-get install python3-pyxs): skipped");
}

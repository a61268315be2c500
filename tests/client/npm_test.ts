// The npm package: built from src/client (src/client/npm/build.ts), imported by Node, talking to a
// real dxenstored — socket, pipelining, a transaction, a watch, typed errors.
import assert from "../helpers/assert.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { buildPackage } from "../../src/client/npm/build.ts";

const node = await new Deno.Command("node", { args: ["--version"], stdout: "piped", stderr: "null" }).output()
  .catch(() => null);
const nodeMajor = node?.success
  ? Number(new TextDecoder().decode(node.stdout).replace(/^v/, "").split(".")[0])
  : 0;

const SCRIPT = `
import { XenStore, XsError } from "PKG";
const xs = await XenStore.open();               // XENSTORED_PATH, as libxenstore
await xs.write("/node/a", "from node ✓");
const reads = await Promise.all(Array.from({ length: 100 }, () => xs.read("/node/a")));
const w = await xs.watch("/node");
const it = w[Symbol.asyncIterator]();
const first = (await it.next()).value.path;
const committed = await xs.transaction(async (tx) => { await tx.write("/node/t", "1"); return "yes"; });
const second = (await it.next()).value.path;
let errno = null;
try { await xs.read("/node/missing"); } catch (e) { errno = e instanceof XsError ? e.errno : String(e); }
await w.close();
xs.close();
console.log(JSON.stringify({ same: reads.every((r) => r === "from node ✓"), first, second, committed, errno }));
`;

Deno.test({
  name: "npm package: built with tsc, imported by Node >= 20, works against dxenstored",
  ignore: nodeMajor < 20,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-npm-test-" });
    try {
      const pkg = await buildPackage(`${dir}/dxenstore-client`);
      const pj = JSON.parse(await Deno.readTextFile(`${pkg}/package.json`));
      assert.equal(pj.types, "./client/mod.d.ts");
      await Deno.stat(`${pkg}/client/mod.d.ts`);
      await Deno.writeTextFile(`${dir}/run.mjs`, SCRIPT.replace("PKG", `${pkg}/client/mod.js`));
      await using d = await startDaemon();
      const o = await new Deno.Command("node", {
        args: [`${dir}/run.mjs`],
        env: { XENSTORED_PATH: d.socket },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(o.stderr);
      assert.equal(o.code, 0, err);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(o.stdout)), {
        same: true,
        first: "/node",
        second: "/node/t",
        committed: "yes",
        errno: "ENOENT",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

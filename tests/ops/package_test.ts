// The .deb: built offline with dpkg-deb (packaging/build_deb.ts, `deno task deb`), then installed into
// a throw-away Debian 12 with xen-utils-4.17 (packaging/test-install.sh: an overlay of this host's root
// in a private mount namespace): files and conffiles as listed, the installed daemon passes Debian's
// init contract, systemd-analyze verify passes on the unit and the drop-in, no service action is ever
// attempted (deny-all policy-rc.d), and removal leaves /etc/default/xen unchanged.
import assert from "../helpers/assert.ts";
import { buildDeb, CACHE_DIR, shippedDocs } from "../../packaging/build_deb.ts";
import { readV8Flags, v8FlagsArgs } from "../../compile/v8_flags.ts";
import { exists, isRoot, run, which } from "./helpers.ts";

const SCRIPT = new URL("../../packaging/test-install.sh", import.meta.url).pathname;
const canBuild = which("dpkg-deb") !== null;
const canInstall = isRoot && which("unshare") !== null && which("dpkg") !== null &&
  exists("/usr/lib/xen-4.17/bin/xenstored");

const EXPECTED = [
  "debian-12",
  "xen-utils-4.17 installed",
  "dpkg -i",
  "files listed",
  "no source tree",
  "doc links resolve",
  "conffiles: /etc/logrotate.d/dxenstored /etc/xen/dxenstored.conf",
  "unit disabled",
  "drop-in inactive",
  "config-test",
  "config-test oxenstored.conf",
  "start-stop-daemon start",
  "xenstore-read -s /",
  "dxenstore write+read",
  "store under /var/lib/xenstored/dxenstored",
  "pid file",
  "process name dxenstored",
  "dpkg -r",
  "binary removed",
  "conffile kept after remove",
  "dpkg -P",
  "conffile purged",
  "/etc/default/xen unchanged",
  "no service action attempted (policy-rc.d)",
];

Deno.test({
  name: "package: the .deb builds offline and installs, runs and removes cleanly in a Debian 12 root",
  ignore: !canBuild,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "dxdebtest-" });
    try {
      const deb = await buildDeb({ out, compression: "gzip", test: false });
      const info = await run("dpkg-deb", ["-f", deb, "Package", "Architecture"]);
      assert.equal(info.stdout, "Package: dxenstored\nArchitecture: amd64\n");
      const list = (await run("dpkg-deb", ["-c", deb])).stdout;
      const paths = list.split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => p !== undefined);
      for (
        const f of [
          "./usr/sbin/dxenstored",
          "./usr/bin/dxenstore",
          "./usr/bin/dxenstore-guest",
          "./usr/lib/dxenstored/deno",
          "./usr/lib/dxenstored/dxenstored.js",
          "./usr/share/man/man8/dxenstored.8.gz",
          "./etc/xen/dxenstored.conf",
          ...shippedDocs().map((d) => `./usr/share/doc/dxenstored/${d}`),
        ]
      ) {
        assert.ok(paths.includes(f), `${f} in the package`);
      }
      // The program is one file: no source tree, no node_modules, nothing else under /usr/lib/dxenstored.
      assert.deepEqual(
        paths.filter((p) => p.startsWith("./usr/lib/dxenstored/") && !p.endsWith("/")).sort(),
        ["./usr/lib/dxenstored/deno", "./usr/lib/dxenstored/dxenstored.js"],
      );
      assert.ok(!paths.some((p) => p.includes("node_modules") || p.endsWith(".ts")), list);
      assert.ok(shippedDocs().includes("quotas.md"), "operations.md's links are shipped");
      // The launcher: Deno exec'd as dxenstored with compile/v8-flags' flags and the package's cache.
      const x = await Deno.makeTempDir({ dir: out });
      assert.equal((await run("dpkg-deb", ["-x", deb, x])).code, 0);
      const launcher = Deno.readTextFileSync(`${x}/usr/sbin/dxenstored`);
      const exec = launcher.split("\n").find((l) => l.startsWith("exec "));
      const v8 = v8FlagsArgs(readV8Flags());
      assert.equal(
        exec,
        `exec -a dxenstored /usr/lib/dxenstored/deno run ${
          [...v8, ""].join(" ")
        }--allow-all --quiet --no-config ` +
          `--no-lock --no-remote --no-npm /usr/lib/dxenstored/dxenstored.js "$@"`,
      );
      assert.ok(launcher.includes(`export DENO_DIR=${CACHE_DIR}\n`), launcher);
      if (!canInstall) {
        console.log("  (not root, or no unshare/dpkg/xen-utils-4.17: install test skipped)");
        return;
      }
      const r = await run("bash", [SCRIPT, deb]);
      const lines = r.stdout.split("\n");
      const failed = lines.filter((l) => l.startsWith("FAIL"));
      if (failed.some((l) => l.startsWith("FAIL overlay"))) {
        console.log(`  (no overlay mounts here: install test skipped)\n${r.stdout}`);
        return;
      }
      assert.deepEqual(failed, [], `install test:\n${r.stdout}${r.stderr}`);
      for (const e of EXPECTED) {
        assert.ok(lines.some((l) => l.startsWith(`ok ${e}`)), `check "${e}" ran:\n${r.stdout}`);
      }
      if (which("systemd-analyze") !== null) {
        assert.ok(lines.includes("ok systemd-analyze verify dxenstored.service"), r.stdout);
        assert.ok(lines.includes("ok systemd-analyze verify xen.service + drop-in"), r.stdout);
      }
      assert.equal(r.code, 0);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

// The same checks in a fresh debootstrap'ed Debian 12 (downloads a system: about a minute, more on a
// slow mirror). Opt-in: DXENSTORED_TEST_DEBOOTSTRAP=1 bin/test, or `bin/deno task deb:test-debootstrap`.
Deno.test({
  name: "package: installs and runs in a fresh debootstrap'ed Debian 12 (opt-in)",
  ignore: !canInstall || Deno.env.get("DXENSTORED_TEST_DEBOOTSTRAP") !== "1",
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "dxdebtest-" });
    try {
      const deb = await buildDeb({ out, compression: "gzip", test: false });
      const script = new URL("../../packaging/test-debootstrap.sh", import.meta.url).pathname;
      const r = await run("bash", [script, deb]);
      const failed = r.stdout.split("\n").filter((l) => l.startsWith("FAIL"));
      assert.deepEqual(failed, [], `${r.stdout}${r.stderr.slice(-4000)}`);
      assert.equal(r.code, 0);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

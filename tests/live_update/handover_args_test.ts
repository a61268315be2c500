// The command line a cxenstored successor gets from dxenstored's (src/cli/handover_args.ts): Xen's
// options pass as written, dxenstored's own are left out and named, --socket becomes -N. cxenstored
// 4.17 stops at an option it does not know, so a command line it would refuse must never reach it.
import assert from "../helpers/assert.ts";
import { cxenstoredArgs } from "../../src/cli/handover_args.ts";

Deno.test("cxenstored's arguments from dxenstored's: Xen's options kept, dxenstored's dropped and named", () => {
  const r = cxenstoredArgs([
    "--socket",
    "/run/s",
    "--log-file",
    "/var/log/x",
    "-E",
    "2000",
    "--quota=memory=1000000",
    "-VK",
    "--xen=none",
    "-F",
    "/run/pid",
    "-U",
  ]);
  assert.deepEqual(r.args, ["-E", "2000", "--quota", "memory=1000000", "-V", "-K", "-F", "/run/pid", "-N"]);
  assert.deepEqual(r.dropped, ["--log-file /var/log/x", "--xen none"]);
});

Deno.test("cxenstored's arguments: -N once, -U and -P never (the handover appends -U)", () => {
  assert.deepEqual(cxenstoredArgs(["-N", "--socket", "/s", "-U"]).args, ["-N"]);
  assert.deepEqual(cxenstoredArgs(["-P", "-N", "-U"]).args, ["-N"]);
  assert.deepEqual(cxenstoredArgs([]), { args: [], dropped: [] });
});

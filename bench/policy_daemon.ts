// A minimal daemon for bench/policy.ts: the core and the Unix-socket server exactly as the daemon wires
// them (in-memory store), with either a policy chain loaded like the daemon's (`--policy LIST`, Extism
// SDK check included) or, for the baseline only, an allow-all policy (`--allow-all`) that exists
// nowhere but here. Both variants run this same file, so the only difference measured is the policy.
//   deno run -A bench/policy_daemon.ts --socket PATH (--policy legacy | --allow-all)
import { Core } from "../src/dispatch/core.ts";
import type { Policy } from "../src/policy/policy.ts";
import { parseChainList } from "../src/policy/loader.ts";
import { PolicyManager } from "../src/policy/manager.ts";
import { EventLoop } from "../src/transport/loop.ts";
import { SocketServer } from "../src/transport/socket_server.ts";
import { log } from "../src/common/log.ts";

/** Allows everything and keeps the parent's permissions: the "policy disabled" baseline. */
const ALLOW_ALL: Policy = {
  name: "allow-all (bench only)",
  checkNode: () => undefined,
  permsForCreate: (_who, parent) => parent,
  checkSetPerms: () => undefined,
  checkCapability: () => undefined,
};

const args = Deno.args;
const at = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const socket = at("--socket");
if (socket === undefined) throw new Error("--socket PATH needed");
let policy: Policy = ALLOW_ALL;
if (!args.includes("--allow-all")) {
  const names = parseChainList(at("--policy") ?? "legacy");
  if (typeof names === "string") throw new Error(names);
  policy = (await PolicyManager.start({ chain: names })).current;
}
const core = new Core({ policy });
const loop = new EventLoop();
const server = new SocketServer(loop, core, { path: socket });
try {
  Deno.removeSync(socket);
} catch { /* none */ }
server.listen();
log("info", `bench daemon: ${socket}, policy ${policy.name}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => loop.stop());
await loop.run();
loop.close();
try {
  Deno.removeSync(socket);
} catch { /* gone */ }
Deno.exit(0);

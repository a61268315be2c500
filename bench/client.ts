// `deno task bench:client [--ops N] [--daemon dxenstored|cxenstored|oxenstored]`: the client library's
// READ throughput, sequential and pipelined, against pyxs (python3-pyxs) and libxenstore (a small C
// client built here, linked with -lxenstore from libxen-dev), in one run against one daemon. Each client
// reads one node N times after a warm-up; ops/s and the ratio to the library are printed. pyxs and
// libxenstore have no pipelining (one request in flight per connection), so their pipelined rows are n/a.
import { startAnchor } from "../tests/helpers/anchor.ts";
import { XenStore } from "../src/client/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BUILD = `${ROOT}.build/bench-client`;
const dec = new TextDecoder();

const C_CLIENT = `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xenstore.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  struct xs_handle *h = xs_open(0);
  if (!h) { perror("xs_open"); return 1; }
  unsigned int len;
  for (int i = 0; i < n / 10; i++) free(xs_read(h, XBT_NULL, "/bench/a", &len));
  double t0 = now();
  for (int i = 0; i < n; i++) { void *v = xs_read(h, XBT_NULL, "/bench/a", &len); if (!v) { perror("xs_read"); return 1; } free(v); }
  printf("%f\\n", n / (now() - t0));
  xs_close(h);
  return 0;
}
`;

const PYXS = `
import sys, time, pyxs
n = int(sys.argv[1])
with pyxs.Client(unix_socket_path=sys.argv[2]) as c:
    for _ in range(n // 10): c.read(b"/bench/a")
    t0 = time.monotonic()
    for _ in range(n): c.read(b"/bench/a")
    print(n / (time.monotonic() - t0))
`;

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const o = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) throw new Error(`${cmd}: ${dec.decode(o.stderr).trim()}`);
  return dec.decode(o.stdout).trim();
}

async function libxenstoreClient(): Promise<string> {
  await Deno.mkdir(BUILD, { recursive: true });
  await Deno.writeTextFile(`${BUILD}/xsread.c`, C_CLIENT);
  await run("gcc", ["-O2", "-o", `${BUILD}/xsread`, `${BUILD}/xsread.c`, "-lxenstore"]);
  return `${BUILD}/xsread`;
}

async function library(socket: string, n: number, depth: number): Promise<number> {
  using xs = await XenStore.open({ socket, timeoutMs: 0 });
  const once = async (count: number) => {
    if (depth === 1) {
      for (let i = 0; i < count; i++) await xs.read("/bench/a");
      return;
    }
    for (let i = 0; i < count; i += depth) {
      await Promise.all(Array.from({ length: Math.min(depth, count - i) }, () => xs.read("/bench/a")));
    }
  };
  await once(Math.ceil(n / 10));
  const t0 = performance.now();
  await once(n);
  return n / ((performance.now() - t0) / 1000);
}

async function daemon(kind: string): Promise<{ socket: string; stop(): Promise<void> }> {
  if (kind !== "dxenstored") return await startAnchor(kind as "cxenstored" | "oxenstored");
  const dir = await Deno.makeTempDir({ prefix: "dxs-bench-client-" });
  const socket = `${dir}/socket`;
  const child = new Deno.Command(`${ROOT}bin/dxenstored`, {
    args: ["--socket", socket, "--backend", "memory"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 400; i++) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    socket,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function main() {
  let n = 20000;
  let kind = "dxenstored";
  for (let i = 0; i < Deno.args.length; i++) {
    if (Deno.args[i] === "--ops") n = Number(Deno.args[++i]);
    else if (Deno.args[i] === "--daemon") kind = Deno.args[++i];
    else throw new Error(`usage: bench/client.ts [--ops N] [--daemon dxenstored|cxenstored|oxenstored]`);
  }
  const c = await libxenstoreClient();
  const d = await daemon(kind);
  const rows: Array<[string, number | string]> = [];
  try {
    {
      using xs = await XenStore.open({ socket: d.socket });
      await xs.write("/bench/a", "a value of some thirty bytes..");
    }
    const lib = await library(d.socket, n, 1);
    rows.push(["library (Deno), sequential READ", lib]);
    rows.push(["library (Deno), pipelined READ (64 in flight)", await library(d.socket, n, 64)]);
    rows.push([
      "libxenstore (C, xs_read), sequential READ",
      Number(await run(c, [String(n)], { XENSTORED_PATH: d.socket })),
    ]);
    rows.push([
      "pyxs (python3-pyxs), sequential READ",
      await run("/usr/bin/python3", ["-c", PYXS, String(n), d.socket])
        .then(Number).catch((e) => `n/a (${(e as Error).message.split("\n")[0]})`),
    ]);
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
    console.log(
      `## client READ throughput against ${kind} (${n} reads each, one run; load average ${load})\n`,
    );
    console.log("| client | READ/s | × library sequential |\n| --- | ---: | ---: |");
    for (const [name, v] of rows) {
      console.log(
        `| ${name} | ${typeof v === "number" ? Math.round(v) : v} | ${
          typeof v === "number" ? (v / lib).toFixed(2) : "-"
        } |`,
      );
    }
    console.log("| libxenstore / pyxs, pipelined | n/a (one request in flight per connection) | - |");
  } finally {
    await d.stop();
  }
}

await main();

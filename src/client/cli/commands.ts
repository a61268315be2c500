// The dxenstore commands: the xenstore-utils verbs, and what those lack (depth watches as a stream,
// atomic scripts, quotas, features, subtrees as JSON, the policy chain, statistics, top). Each is one
// table entry with its help text; src/client/cli/main.ts parses, connects and maps errors to exit codes.
import { domidArg, type FlagSpec, intArg, type Parsed, UsageError } from "./args.ts";
import { checkTree, parseScript, readTree, runScript, writeTree } from "./tree.ts";
import { formatPerm } from "../payload.ts";
import type { XenStore } from "../xenstore.ts";
import { UnsupportedError } from "../errors.ts";

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Standard input as text (txn, tree put). */
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
}

export interface Command {
  readonly name: string;
  readonly synopsis: string;
  readonly help: string;
  readonly flags: readonly FlagSpec[];
  /** Operands: at least, at most. */
  readonly operands: readonly [number, number];
  run(xs: XenStore, p: Parsed, io: Io): Promise<void>;
}

const JSON_FLAG: FlagSpec = { name: "json" };

function need(p: Parsed, n: number, what: string, cmd: string): void {
  if (p.operands.length < n) throw new UsageError(`${cmd} needs ${what}`, cmd);
}

async function inputText(p: Parsed, io: Io, idx: number): Promise<string> {
  const f = p.operands[idx];
  return f === undefined || f === "-" ? await io.readStdin() : await io.readFile(f);
}

/** Every command dxenstore has (completion and help list them in this order). */
export const COMMANDS: readonly Command[] = [
  {
    name: "read",
    synopsis: "read [-p] PATH...",
    help: 'Print the value of each PATH, one a line (-p: prefixed with "PATH: ").',
    flags: [{ name: "prefix", short: "p" }],
    operands: [1, Infinity],
    async run(xs, p, io) {
      const vals = await Promise.all(p.operands.map((path) => xs.read(path)));
      vals.forEach((v, i) => io.out(p.flags.has("prefix") ? `${p.operands[i]}: ${v}` : v));
    },
  },
  {
    name: "write",
    synopsis: "write PATH VALUE [PATH VALUE...]",
    help: "Write each VALUE at its PATH (missing parents are created).",
    flags: [],
    operands: [2, Infinity],
    async run(xs, p) {
      if (p.operands.length % 2 !== 0) throw new UsageError("write takes PATH VALUE pairs", "write");
      const jobs = [];
      for (let i = 0; i < p.operands.length; i += 2) jobs.push(xs.write(p.operands[i], p.operands[i + 1]));
      await Promise.all(jobs);
    },
  },
  {
    name: "mkdir",
    synopsis: "mkdir PATH...",
    help: "Create each PATH with an empty value (an existing node is left alone).",
    flags: [],
    operands: [1, Infinity],
    async run(xs, p) {
      await Promise.all(p.operands.map((path) => xs.mkdir(path)));
    },
  },
  {
    name: "rm",
    synopsis: "rm [-t] PATH...",
    help: "Remove each PATH and everything below it (-t: then its parents, as long as they are empty).",
    flags: [{ name: "tidy", short: "t" }],
    operands: [1, Infinity],
    async run(xs, p) {
      for (const path of p.operands) {
        await xs.rm(path);
        if (!p.flags.has("tidy")) continue;
        let parent = path.replace(/\/[^/]*$/, "");
        while (parent !== "" && parent !== path) {
          if ((await xs.ls(parent)).length > 0 || (await xs.read(parent)) !== "") break;
          await xs.rm(parent);
          parent = parent.replace(/\/[^/]*$/, "");
        }
      }
    },
  },
  {
    name: "exists",
    synopsis: "exists PATH",
    help: "Exit 0 if PATH exists, 2 (ENOENT) if not.",
    flags: [],
    operands: [1, 1],
    async run(xs, p) {
      await xs.read(p.operands[0]);
    },
  },
  {
    name: "list",
    synopsis: "list PATH",
    help: "Print the names of PATH's children, one a line (xenstore-list).",
    flags: [],
    operands: [1, 1],
    async run(xs, p, io) {
      for (const n of await xs.ls(p.operands[0])) io.out(n);
    },
  },
  {
    name: "ls",
    synopsis: "ls [-p] [PATH]",
    help: 'Print the subtree at PATH (default /) as `PATH = "value"` lines, full paths (xenstore-ls -f);\n' +
      "-p adds each node's permissions.",
    flags: [{ name: "perms", short: "p" }],
    operands: [0, 1],
    async run(xs, p, io) {
      const root = p.operands[0] ?? "/";
      const tree = await readTree(xs, root, p.flags.has("perms"));
      const walk = (path: string, n: typeof tree) => {
        const v = n.value !== undefined ? JSON.stringify(n.value) : `base64:${n.base64}`;
        io.out(`${path} = ${v}${n.perms ? `  (${n.perms.join(",")})` : ""}`);
        for (const [k, c] of Object.entries(n.children ?? {})) {
          walk(path === "/" ? `/${k}` : `${path}/${k}`, c);
        }
      };
      walk(root, tree);
    },
  },
  {
    name: "perms",
    synopsis: "perms PATH",
    help: "Print PATH's permissions (owner first), e.g. `n0 r5`.",
    flags: [],
    operands: [1, 1],
    async run(xs, p, io) {
      io.out((await xs.getPerms(p.operands[0])).map(formatPerm).join(" "));
    },
  },
  {
    name: "chmod",
    synopsis: "chmod [-r] PATH PERM...",
    help: "Set PATH's permissions: PERM is n|r|w|b followed by a domid, the first one the owner\n" +
      "(xenstore-chmod). -r: the whole subtree.",
    flags: [{ name: "recursive", short: "r" }],
    operands: [2, Infinity],
    async run(xs, p) {
      const [path, ...perms] = p.operands;
      perms.forEach((x) => formatPerm(x));
      if (!p.flags.has("recursive")) return await xs.setPerms(path, perms);
      await xs.transaction(async (tx) => {
        const paths: string[] = [];
        const walk = async (q: string) => {
          paths.push(q);
          for (const k of await tx.ls(q)) await walk(q === "/" ? `/${k}` : `${q}/${k}`);
        };
        await walk(path);
        await Promise.all(paths.map((q) => tx.setPerms(q, perms)));
      });
    },
  },
  {
    name: "watch",
    synopsis: "watch [--depth N] [-n COUNT] [--json] PATH",
    help: "Stream the changes under PATH, one a line (the first is the watch's registration).\n" +
      "--depth N: only N levels below PATH (dxenstored). -n: stop after COUNT events.\n" +
      "--json: one JSON object a line ({path, token} and, after a reconnection, {gap}).\n" +
      "The watch survives a daemon restart: it is registered again and a gap line says so.",
    flags: [{ name: "depth", value: true }, { name: "count", short: "n", value: true }, JSON_FLAG],
    operands: [1, 1],
    async run(xs, p, io) {
      const depth = p.flags.has("depth")
        ? intArg(String(p.flags.get("depth")), "depth", 65535, "watch")
        : undefined;
      const count = p.flags.has("count")
        ? intArg(String(p.flags.get("count")), "count", 2 ** 31, "watch")
        : Infinity;
      const w = await xs.watch(p.operands[0], { depth });
      let n = 0;
      if (n >= count) return await w.close();
      for await (const e of w) {
        if (p.flags.has("json")) io.out(JSON.stringify(e));
        else if (e.gap !== undefined) {
          io.out(`# gap (${e.gap}${e.missed ? `, ${e.missed} events missed` : ""}): ${e.path}`);
        } else io.out(e.path);
        if (++n >= count) break;
      }
    },
  },
  {
    name: "txn",
    synopsis: "txn [FILE|-]",
    help: "Run a script of operations as one transaction, retried on conflicts (EAGAIN). One operation\n" +
      "a line: read PATH | write PATH VALUE | mkdir PATH | rm PATH | ls PATH | exists PATH |\n" +
      'perms PATH | chmod PATH PERM... ; `#` comments; a VALUE starting with " is a JSON string.\n' +
      "Output (of read, ls, exists, perms) is printed once, from the attempt that committed.",
    flags: [{ name: "attempts", value: true }],
    operands: [0, 1],
    async run(xs, p, io) {
      const ops = parseScript(await inputText(p, io, 0));
      const maxAttempts = p.flags.has("attempts")
        ? intArg(String(p.flags.get("attempts")), "attempts", 1000, "txn")
        : undefined;
      const out = await xs.transaction((tx) => runScript(tx, ops), {
        maxAttempts,
        onRetry: (n, e) => io.err(`dxenstore: txn: attempt ${n} (${e.message})`),
      });
      for (const l of out) io.out(l);
    },
  },
  {
    name: "tree",
    synopsis: "tree get PATH | tree put PATH [FILE|-]",
    help: "get: print the subtree at PATH as JSON (values, permissions, children), read in one\n" +
      "transaction. put: write such JSON at PATH, in one transaction.",
    flags: [{ name: "no-perms" }],
    operands: [2, 3],
    async run(xs, p, io) {
      const [verb, path] = p.operands;
      if (verb === "get") {
        if (p.operands.length !== 2) throw new UsageError("tree get takes one PATH", "tree");
        const t = await xs.transaction((tx) => readTree(tx, path, !p.flags.has("no-perms")));
        io.out(JSON.stringify(t, null, 2));
      } else if (verb === "put") {
        let json: unknown;
        try {
          json = JSON.parse(await inputText(p, io, 2));
        } catch (e) {
          throw new UsageError(`tree put: the input is not JSON (${(e as Error).message})`, "tree");
        }
        let tree;
        try {
          tree = checkTree(json);
        } catch (e) {
          throw new UsageError(`tree put: ${(e as Error).message}`, "tree");
        }
        const n = await xs.transaction((tx) => writeTree(tx, path, tree));
        io.err(`dxenstore: wrote ${n} nodes under ${path}`);
      } else throw new UsageError(`tree: unknown verb "${verb}" (get or put)`, "tree");
    },
  },
  {
    name: "quota",
    synopsis: "quota [DOMID] | quota set NAME VALUE [DOMID]",
    help: "Without arguments: the global quotas. With DOMID: the domain's usage next to its limits\n" +
      "(overrides included where the daemon has GET_QUOTA). set: a new global value, or one domain's.",
    flags: [JSON_FLAG],
    operands: [0, 4],
    async run(xs, p, io) {
      const [a, b, c, d] = p.operands;
      if (a === "set") {
        if (b === undefined || c === undefined) throw new UsageError("quota set NAME VALUE [DOMID]", "quota");
        const v = intArg(c, "value", 0xffffffff, "quota");
        const domid = d === undefined ? undefined : domidArg(d, "quota");
        const f = await xs.features();
        if (f.quota) return await xs.quota.set(b, v, domid);
        if (domid !== undefined) throw new UnsupportedError("per-domain quotas (SET_QUOTA)");
        await xs.control("quota", "set", b, String(v));
        return;
      }
      if (b !== undefined) {
        throw new UsageError("quota takes at most a DOMID (or: set NAME VALUE [DOMID])", "quota");
      }
      const f = await xs.features();
      const limits: Record<string, number> = f.quota
        ? Object.fromEntries(
          await Promise.all(f.quotaNames.map(async (n) => [n, await xs.quota.get(n)] as const)),
        )
        : await xs.quota.limits().catch((e) => {
          // oxenstored lists no limits: a domain's usage is shown without them.
          if (a === undefined || !(e instanceof UnsupportedError)) throw e;
          return {};
        });
      if (a === undefined) {
        if (p.flags.has("json")) return io.out(JSON.stringify(limits));
        for (const [k, v] of Object.entries(limits)) io.out(`${k.padEnd(18)} ${v}`);
        return;
      }
      const domid = domidArg(a, "quota");
      const usage = await xs.quota.usage(domid);
      const own = f.quota
        ? Object.fromEntries(
          await Promise.all(f.quotaNames.map(async (n) => [n, await xs.quota.get(n, domid)] as const)),
        )
        : limits;
      const rows = Object.entries(usage).map(([k, v]) => ({ name: k, used: v, limit: own[k] ?? null }));
      if (p.flags.has("json")) return io.out(JSON.stringify({ domid, quotas: rows }));
      io.out(`${"quota".padEnd(14)} ${"used".padStart(10)} ${"limit".padStart(10)}`);
      for (const r of rows) {
        const lim = r.limit === null ? "-" : r.limit === 0 ? "none" : String(r.limit);
        io.out(
          `${r.name.padEnd(14)} ${(Number.isNaN(r.used) ? "?" : String(r.used)).padStart(10)} ${
            lim.padStart(10)
          }`,
        );
      }
    },
  },
  {
    name: "features",
    synopsis: "features [--json]",
    help: "What the daemon supports: GET_FEATURE bits, watch depth, nested transactions, quotas,\n" +
      "CONTROL commands, and which daemon it looks like.",
    flags: [JSON_FLAG],
    operands: [0, 0],
    async run(xs, p, io) {
      const f = await xs.features();
      if (p.flags.has("json")) return io.out(JSON.stringify(f));
      const yes = (b: boolean) => (b ? "yes" : "no");
      io.out(`daemon               ${f.daemon}`);
      io.out(`feature bits         ${f.bits === null ? "(no GET_FEATURE)" : `0x${f.bits.toString(16)}`}`);
      io.out(`watch depth          ${yes(f.watchDepth)}`);
      io.out(`nested transactions  ${yes(f.nestedTransactions)}`);
      io.out(`quotas (GET_QUOTA)   ${f.quota ? f.quotaNames.join(" ") : "no"}`);
      io.out(`control commands     ${f.control === null ? "(none listed)" : f.control.join(" ")}`);
      io.out(`stats / policy       ${yes(f.stats)} / ${yes(f.policy)}`);
    },
  },
  {
    name: "policy",
    synopsis: "policy [list|reload]",
    help: "list (default): dxenstored's policy chain and its counters. reload: load the chain again\n" +
      "atomically (as SIGHUP; the old chain stays on error).",
    flags: [],
    operands: [0, 1],
    async run(xs, p, io) {
      const verb = p.operands[0] ?? "list";
      if (verb === "list") io.out((await xs.policy()).replace(/\n$/, ""));
      else if (verb === "reload") io.out((await xs.policyReload()).replace(/\n$/, ""));
      else throw new UsageError(`policy: unknown verb "${verb}" (list or reload)`, "policy");
    },
  },
  {
    name: "stats",
    synopsis: "stats [--json] [PREFIX]",
    help: "dxenstored's statistics (Prometheus samples), all or those whose name starts with PREFIX.",
    flags: [JSON_FLAG],
    operands: [0, 1],
    async run(xs, p, io) {
      const samples = await xs.stats(p.operands[0] ?? "");
      if (p.flags.has("json")) return io.out(JSON.stringify(samples));
      for (const s of samples) {
        const l = Object.entries(s.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",");
        io.out(`${s.name}${l ? `{${l}}` : ""} ${s.value}`);
      }
    },
  },
  {
    name: "control",
    synopsis: "control COMMAND [ARG...]",
    help: "Send a CONTROL request (xenstore-control) and print the reply.",
    flags: [],
    operands: [1, Infinity],
    async run(xs, p, io) {
      io.out((await xs.control(...p.operands)).replace(/\n$/, ""));
    },
  },
  {
    name: "domain-path",
    synopsis: "domain-path DOMID",
    help: "Print the home path of a domain (GET_DOMAIN_PATH).",
    flags: [],
    operands: [1, 1],
    async run(xs, p, io) {
      io.out(await xs.getDomainPath(domidArg(p.operands[0], "domain-path")));
    },
  },
];

export { need };

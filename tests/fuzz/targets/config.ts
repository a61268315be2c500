// The configuration parsers: the policy keys (src/policy/loader.ts parsePolicyFile: settings or an
// error message naming the line, never an exception) and, on the same text, the daemon's own keys
// (src/cli/config.ts applyConfig: problems are reported per line, never thrown). Invariants: a parsed
// chain is 1–16 valid, distinct names; sandbox limits are positive integers; every problem names a
// line of the file.
import { parsePolicyFile } from "../../../src/policy/loader.ts";
import { applyConfig } from "../../../src/cli/config.ts";
import { defaultOptions } from "../../../src/cli/options.ts";
import { check, type Target } from "../engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const FILES = [
  "# dxenstored policy\npolicy = legacy, chinese-wall\n" +
  "policy-config.chinese-wall.conflict-sets = banks:a=/cw/a,/cw/b banks:b=/cw/c\n" +
  "policy-config.chinese-wall.exempt-privileged = no\npolicy-fuel = 1000000\npolicy-memory-pages = 16\n",
  "policy = legacy,strict-protocol,maintenance\npolicy-plugin.mine = /usr/lib/dxenstored/mine.wasm\n" +
  "policy-var-bytes = 65536\npolicy-config.maintenance.writers = 0,5\n",
  // A daemon config (oxenstored.conf syntax) with policy keys among the others.
  "pid-file = /run/xenstored.pid\nquota-maxentity = 1000\nquota-maxsize = 2048\n" +
  "log-level = info\nmerge-activate = true\npolicy = legacy\n# comment\n\n",
];

export const configTarget: Target = {
  name: "config",
  contract: "policy-config and daemon config text (parsePolicyFile, applyConfig): never throw",
  corpus: () => FILES.map((f) => enc.encode(f)),
  run(input) {
    const text = dec.decode(input);
    const lines = text.split("\n").length;
    const p = parsePolicyFile(text);
    if (typeof p === "string") {
      const m = /^line (\d+): /.exec(p);
      check(m !== null && Number(m[1]) >= 1 && Number(m[1]) <= lines, `error without its line: ${p}`);
    } else {
      if (p.chain !== undefined) {
        check(
          p.chain.length >= 1 && p.chain.length <= 16 && new Set(p.chain).size === p.chain.length,
          "chain",
        );
      }
      for (const v of Object.values(p.limits)) {
        check(Number.isSafeInteger(v) && (v as number) > 0, `limit ${v}`);
      }
    }
    const r = applyConfig(defaultOptions(() => undefined), text);
    for (const e of r.errors) check(e.line >= 1 && e.line <= lines, `problem without its line: ${e.message}`);
  },
  expected: () => false,
  ciCases: 10_000,
};

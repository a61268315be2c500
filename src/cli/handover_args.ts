// The command line a live update's new program is started with when no `-c` says otherwise
// (docs/live-update.md). cxenstored execs its successor with its own arguments plus -U; dxenstored
// does the same for a dxenstored successor. For cxenstored 4.17 as the successor (dx → cx, the way
// back) our arguments must be cut down to what cxenstored understands: getopt_long refuses an option
// it does not know, and a dxenstored option's value would be read as a positional argument, so an
// unfiltered command line would kill the new daemon after the old one is gone. Options both programs
// share (the Xen options of the table, origin cxenstored) pass on as written; dxenstored's own
// (--log-file, --backend, --xen, ...) are dropped and named, so the operator learns what cxenstored
// will not do. `--socket` means "in the foreground" here: cxenstored's -N.
import { type Occurrence, tokenize } from "./options.ts";

export interface SuccessorArgs {
  /** The arguments, without the program and without -U (the handover appends it). */
  readonly args: string[];
  /** dxenstored's own options left out (as written), for the log. */
  readonly dropped: string[];
}

/** Options that describe this start only: never passed on (cxenstored's own -U is appended later). */
const NOT_PASSED_ON = new Set(["U", "H", "h", "P"]);

function written(o: Occurrence): string[] {
  return o.value === undefined ? [o.flag] : [o.flag, o.value];
}

/** cxenstored 4.17's arguments from dxenstored's (`ownArgs` as dxenstored was started). */
export function cxenstoredArgs(ownArgs: readonly string[]): SuccessorArgs {
  const args: string[] = [];
  const dropped: string[] = [];
  let socketFlag = false;
  for (const o of tokenize(ownArgs)) {
    if (o.spec.short !== undefined && NOT_PASSED_ON.has(o.spec.short)) continue;
    if (o.spec.long === "socket") socketFlag = true;
    else if (o.spec.origin.includes("cxenstored")) args.push(...written(o));
    else dropped.push(written(o).join(" "));
  }
  if (socketFlag && !args.includes("-N") && !args.includes("--no-fork")) args.push("-N");
  return { args, dropped };
}

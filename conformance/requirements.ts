// The numbered requirements of docs/spec/, as the suite reports them. The text of each requirement is in
// the spec; here are its id, its level, where it needs a guest domain, and a title for the report.
// tests/conformance/registry_test.ts keeps this list and the spec's requirement ids in step.

export type Level = "MUST" | "SHOULD";

/**
 * "socket": checked over a privileged socket connection (any daemon).
 * "guest": needs guest domains (the simulated Xen); not applicable otherwise.
 * "both": a socket part always, a guest part when guests are available.
 * "client": a requirement on clients; the suite cannot check it against a daemon.
 */
export type Scope = "socket" | "guest" | "both" | "client";

export interface Requirement {
  readonly id: string;
  readonly level: Level;
  readonly scope: Scope;
  readonly title: string;
  /** The spec page that states it (docs/spec/<page>). */
  readonly page: string;
}

type Row = readonly [id: string, level: Level, scope: Scope, title: string];

const chapters: ReadonlyArray<readonly [page: string, rows: readonly Row[]]> = [
  ["wire.md", [
    ["FRAME-1", "MUST", "socket", "messages are a 16-byte little-endian header and len payload bytes"],
    ["FRAME-2", "MUST", "socket", "a message is processed once complete, however split, len 0 included"],
    ["FRAME-3", "MUST", "socket", "a request with a 4096-byte payload is an ordinary message"],
    ["FRAME-4", "MUST", "socket", "len above 4096 closes the connection; nothing after it is answered"],
    ["FRAME-5", "MUST", "socket", "no message with more than 4096 payload bytes is ever sent"],
    ["FRAME-C1", "MUST", "client", "clients send no payload above 4096 bytes"],
    ["FRAME-6", "MUST", "socket", "one reply per request, with its req_id and tx_id, its type or ERROR"],
    ["FRAME-7", "MUST", "socket", "replies come in the order of the requests"],
    ["FRAME-C2", "MUST", "client", "clients accept watch events anywhere between replies"],
    ["FRAME-8", "MUST", "socket", "unknown and daemon-only types get ENOSYS; the connection lives"],
    ["FRAME-9", "MUST", "socket", "malformed payloads get EINVAL; the connection lives"],
    ["ERR-1", "MUST", "socket", "error replies name one of the 16 errno values, NUL-terminated"],
    ["ERR-2", "MUST", "socket", "a request that fails changes nothing"],
    ["FRAME-C3", "MUST", "client", "clients send tx_id 0 with non-transactional requests"],
  ]],
  ["store.md", [
    ["PATH-1", "MUST", "socket", "a path byte outside [A-Za-z0-9-/_@] is EINVAL"],
    ["PATH-2", "MUST", "socket", "empty paths, // and a trailing / are EINVAL"],
    ["PATH-3", "MUST", "both", "relative paths resolve against /local/domain/<caller>"],
    ["PATH-4", "MUST", "socket", "paths with a local part up to 2048 bytes are accepted"],
    ["PATH-5", "MUST", "socket", "absolute paths over 3072 bytes are EINVAL"],
    ["PATH-6", "MUST", "socket", "special paths name no node: EINVAL in node requests"],
    ["PATH-C1", "SHOULD", "client", "clients keep paths within 2048 bytes and avoid @"],
    ["VAL-1", "MUST", "socket", "values are stored and read back byte for byte, NULs included"],
    ["VAL-2", "MUST", "socket", "a node may have a value and children at once"],
    ["VAL-C1", "SHOULD", "client", "clients store short printable ASCII without a trailing NUL"],
    ["PERM-1", "MUST", "guest", "the privileged domain may read, write and set every node"],
    ["PERM-2", "MUST", "guest", "access: owner, else the first entry naming the caller, else entry 0"],
    ["PERM-3", "MUST", "guest", "SET_TARGET: the union of both domains' rights, in any entry order"],
    ["PERM-4", "MUST", "both", "new nodes inherit the parent's list; an unprivileged creator owns them"],
    ["PERM-5", "MUST", "guest", "only the owner (or its target holder) may set permissions: EACCES"],
    ["PERM-6", "MUST", "guest", "only the privileged domain may change the owner: EPERM"],
    ["PERM-7", "MUST", "socket", "permission entries: n r w b and a decimal domid up to 65535"],
    ["PERM-8", "MUST", "socket", "the owner must be an existing domain: ENOENT"],
    ["PERM-9", "MUST", "socket", "entries naming no domain are kept (GET_PERMS, inherited)"],
    ["PERM-10", "SHOULD", "guest", "such an entry grants nothing to a domain created later"],
    ["PERM-11", "MUST", "guest", "a dead domain's entries and nodes are removed"],
    ["PERM-12", "MUST", "guest", "a missing node under an unreadable ancestor is EACCES, not ENOENT"],
    ["PERM-13", "MUST", "socket", "@introduceDomain and @releaseDomain have permission lists"],
  ]],
  ["operations.md", [
    ["NODE-1", "MUST", "socket", "READ returns the value; ENOENT for a missing node"],
    ["NODE-2", "MUST", "socket", "WRITE sets the value, creating the node and missing ancestors"],
    ["NODE-3", "MUST", "socket", "MKDIR creates; on an existing node it changes nothing"],
    ["NODE-4", "MUST", "socket", "RM removes a subtree; missing node OK, missing parent ENOENT"],
    ["NODE-5", "MUST", "socket", "RM / is EINVAL and removes nothing"],
    ["NODE-6", "MUST", "socket", "DIRECTORY lists each child's name once"],
    ["NODE-7", "MUST", "socket", "DIRECTORY that does not fit is E2BIG"],
    ["NODE-C1", "MUST", "client", "clients do not depend on the order of children"],
    ["NODE-8", "MUST", "socket", "DIRECTORY_PART: generation, whole names from the offset, end marker"],
    ["NODE-9", "MUST", "socket", "DIRECTORY_PART: the same generation means the same list"],
    ["NODE-10", "MUST", "socket", "GET_PERMS returns the list, owner entry first"],
    ["NODE-11", "MUST", "socket", "SET_PERMS replaces the node's list and no other"],
    ["NODE-12", "MUST", "guest", "reading a node needs read access: EACCES"],
    ["NODE-13", "MUST", "guest", "WRITE and MKDIR need write access to the node or deepest ancestor"],
    ["NODE-14", "MUST", "guest", "RM needs write access; RM of a missing node needs a readable parent"],
  ]],
  ["transactions.md", [
    ["TXN-1", "MUST", "socket", "TRANSACTION_START replies a new non-zero decimal id"],
    ["TXN-2", "MUST", "socket", "uncommitted changes are invisible outside, visible inside"],
    ["TXN-3", "MUST", "socket", "commit applies everything at once, abort nothing; the id is gone"],
    ["TXN-4", "MUST", "socket", "a tx_id naming no open transaction of the connection is ENOENT"],
    ["TXN-5", "MUST", "socket", "TRANSACTION_END other than T or F is EINVAL; the transaction stays"],
    ["TXN-6", "MUST", "socket", "closing the connection or RESET_WATCHES aborts its transactions"],
    ["TXN-7", "MUST", "socket", "EAGAIN when a reply the transaction got would now differ"],
    ["TXN-8", "MUST", "socket", "commit when nothing the transaction accessed changed"],
    ["TXN-9", "SHOULD", "socket", "creating sibling nodes in two transactions does not conflict"],
    ["TXN-10", "SHOULD", "socket", "read-only transactions commit"],
    ["TXN-11", "SHOULD", "socket", "blind writes of one node do not conflict; the later commit wins"],
    ["TXN-12", "MUST", "socket", "a failed commit applies nothing and fires no watch"],
    ["TXN-13", "MUST", "socket", "a failed request does not end or spoil the transaction"],
    ["TXN-C1", "MUST", "client", "clients retry a whole transaction after EAGAIN"],
    ["TXN-C2", "SHOULD", "client", "clients keep transactions short and bound their retries"],
    ["TXN-C3", "SHOULD", "client", "clients do not blindly retry commits failing with quota or I/O errors"],
    [
      "TXN-14",
      "MUST",
      "socket",
      "a transaction's watch events come at its commit, never before or after abort",
    ],
    ["TXN-15", "MUST", "both", "a start inside a transaction: EBUSY, or a child with the feature"],
    ["TXN-16", "MUST", "socket", "nested: a child sees its parent and merges into it, not beyond"],
    ["TXN-17", "MUST", "socket", "nested: ending a transaction with open children is EBUSY"],
    ["TXN-18", "MUST", "socket", "nested: a child conflicting with its parent's state gets EAGAIN"],
  ]],
  ["watches.md", [
    ["WATCH-1", "MUST", "socket", "WATCH registers, whether or not the path exists"],
    ["WATCH-2", "MUST", "both", "after the reply, one initial event with the path as sent"],
    ["WATCH-3", "MUST", "socket", "the same path and token twice on a connection is EEXIST"],
    ["WATCH-4", "MUST", "socket", "UNWATCH removes the watch; ENOENT when there is none"],
    ["WATCH-5", "MUST", "socket", "RESET_WATCHES removes every watch of the connection"],
    ["WATCH-6", "MUST", "socket", "WATCH and UNWATCH ignore tx_id"],
    ["WATCH-7", "MUST", "socket", "a change at P fires watches on P and its ancestors only"],
    ["WATCH-8", "MUST", "socket", "removal fires watches below the removed node with their own path"],
    ["WATCH-9", "MUST", "socket", "events: req_id 0, tx_id 0, path and token; relative when registered so"],
    ["WATCH-10", "SHOULD", "socket", "a watch fires at most once per changed path per request or commit"],
    ["WATCH-11", "MUST", "socket", "an event that would exceed 4096 bytes is dropped; later ones still come"],
    ["WATCH-12", "MUST", "socket", "events arrive in the order of the changes"],
    ["WATCH-13", "MUST", "socket", "a change's events precede the reply to any later request"],
    ["WATCH-14", "MUST", "both", "without the watch-depth feature a depth argument is EINVAL"],
    ["WATCH-15", "MUST", "both", "depth limits the levels below the watched path"],
    ["WATCH-16", "MUST", "socket", "special watches never fire for the tree, plain ones never for specials"],
    ["WATCH-17", "MUST", "guest", "@introduceDomain and @releaseDomain fire on introduction and release"],
    ["WATCH-18", "MUST", "guest", "with depth: @releaseDomain/<domid> and @X/<domid> events"],
    ["WATCH-19", "MUST", "guest", "special events go only to the privileged domain and readers"],
    ["WATCH-20", "MUST", "guest", "no event for a path whose node and parent the watcher cannot read"],
    ["WATCH-21", "SHOULD", "guest", "no event for a path the watcher cannot read"],
    ["WATCH-22", "MUST", "guest", "a watcher that could read a removed node gets the removal"],
    ["WATCH-23", "MUST", "socket", "a watcher that does not read delays no other connection"],
    ["WATCH-C1", "MUST", "client", "clients tolerate spurious and merged events"],
    ["WATCH-C2", "MUST", "client", "clients expect no events for paths they cannot read"],
  ]],
  ["domains.md", [
    ["DOM-1", "MUST", "socket", "domid arguments are strict decimal up to 65535: EINVAL"],
    ["DOM-2", "MUST", "guest", "domain management requests from guests are EACCES"],
    ["DOM-3", "MUST", "both", "GET_DOMAIN_PATH replies /local/domain/<domid>, to anyone"],
    ["DOM-4", "MUST", "both", "IS_DOMAIN_INTRODUCED: T for dom0 and introduced domains, else F"],
    ["DOM-5", "MUST", "socket", "INTRODUCE of domid 0 or a reserved id is EINVAL; of no domain ENOENT"],
    ["DOM-6", "MUST", "guest", "INTRODUCE serves the ring and fires @introduceDomain"],
    ["DOM-7", "MUST", "guest", "INTRODUCE of an introduced domain succeeds"],
    ["DOM-8", "MUST", "socket", "RELEASE of dom0 is EINVAL, of a domain not introduced ENOENT"],
    ["DOM-9", "MUST", "guest", "RELEASE ends the introduction as a death does"],
    ["DOM-10", "MUST", "both", "RESUME: ENOENT unless introduced; re-arms the shutdown event"],
    ["DOM-11", "MUST", "both", "SET_TARGET needs two introduced domains; ends with either"],
    ["DOM-12", "MUST", "guest", "a domain's death is noticed and cleaned up without RELEASE"],
    ["DOM-13", "MUST", "guest", "a new domain with a dead one's id starts with nothing of it"],
    ["FEAT-1", "MUST", "both", "GET_FEATURE replies the caller's or a domain's features"],
    ["FEAT-2", "MUST", "both", "SET_FEATURE restricts a domain before INTRODUCE only"],
    ["FEAT-3", "MUST", "guest", "a domain gets exactly the features set for it"],
    ["FEAT-4", "MUST", "guest", "the ring advertises the domain's features"],
    ["QUOTA-1", "MUST", "socket", "GET_QUOTA lists quota names and values"],
    ["QUOTA-2", "MUST", "socket", "SET_QUOTA sets a value GET_QUOTA then replies"],
    ["QUOTA-3", "MUST", "guest", "GET_QUOTA and SET_QUOTA from guests are EACCES"],
    ["QUOTA-4", "MUST", "guest", "a quota refusal has the documented error and changes nothing"],
    ["QUOTA-5", "SHOULD", "socket", "quotas do not bind the privileged domain"],
    ["CTRL-1", "MUST", "guest", "CONTROL from a guest is EACCES"],
    ["CTRL-2", "MUST", "socket", "an unknown or empty CONTROL command is EINVAL"],
    ["CTRL-3", "SHOULD", "socket", "CONTROL help lists the commands"],
  ]],
  ["ring.md", [
    ["RING-1", "MUST", "guest", "the page layout of xs_wire.h"],
    ["RING-2", "MUST", "guest", "indices are free-running 32-bit counters"],
    ["RING-3", "MUST", "guest", "messages span the queue's end and exceed its size"],
    ["RING-4", "MUST", "guest", "a full request queue (1024 bytes) is valid"],
    ["RING-5", "MUST", "guest", "the daemon never overfills the response queue"],
    ["RING-6", "MUST", "guest", "the daemon signals after output and after draining a full queue"],
    ["RING-C2", "MUST", "client", "guests signal after producing and after draining a full queue"],
    ["RING-7", "MUST", "guest", "an oversized header stops the ring with error 3"],
    ["RING-8", "MUST", "guest", "bad indices stop the ring with error 2; no @releaseDomain"],
    ["RING-9", "MUST", "guest", "reconnection drops everything of the connection and serves anew"],
    ["RING-10", "SHOULD", "guest", "reconnection clears an error and resumes service"],
    ["RING-C1", "MUST", "client", "guests assume nothing about initial indices and unknown bits"],
    ["RING-C3", "MUST", "client", "guests never send an oversized message"],
  ]],
];

export const REQUIREMENTS: readonly Requirement[] = chapters.flatMap(([page, rows]) =>
  rows.map(([id, level, scope, title]) => ({ id, level, scope, title, page }))
);

export const BY_ID: ReadonlyMap<string, Requirement> = new Map(REQUIREMENTS.map((r) => [r.id, r]));

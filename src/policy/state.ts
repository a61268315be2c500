// The policy chain's state as a live update carries it to the new program (docs/plugins.md, "State
// across a live update"; the stream record is src/live_update/dx_policy.ts). Per plugin, in chain order:
//  - its Extism variables: the state the host keeps for it (per plugin name, across rebuilds and
//    reloads), carried whole — a live update is a reload into another process;
//  - what its optional `state_save` export answered (the state it keeps itself, and whatever the new
//    program's plugin needs to decide whether it understands the rest), handed to the new plugin's
//    `state_load`, which accepts it or refuses with a reason.
// A chain that differs (names or order) or a plugin that refuses is an error: the new program must not
// serve with state it did not take over (a Chinese Wall that forgot who touched which class lets a
// guest cross it), so it goes back to the old program (src/live_update/fallback.ts).

/** Bytes a plugin's `state_save` may answer (it lands in a kernel block of at most 2 MiB). */
export const MAX_SAVED_STATE = 256 * 1024;

export interface PluginState {
  readonly name: string;
  /** The plugin's Extism variables. */
  readonly vars: ReadonlyMap<string, Uint8Array>;
  /** What `state_save` answered; null if the plugin has no such export. */
  readonly saved: Uint8Array | null;
}

export interface PolicyState {
  /** In chain order. */
  readonly plugins: readonly PluginState[];
}

/** Why a chain's state cannot be saved or taken over; the message is the operator's reply. */
export class PolicyStateError extends Error {
  override name = "PolicyStateError";
}

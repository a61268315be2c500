// Shell completion for dxenstore: commands, their options, and store paths (asked from the daemon
// through `dxenstore __complete WORD`, which lists the children of the path being typed).
import type { Command } from "./commands.ts";

export function completionScript(shell: "bash" | "zsh", commands: readonly Command[]): string {
  const names = [...commands.map((c) => c.name), "help", "completion"].join(" ");
  const cases = commands.map((c) => {
    const flags = [...c.flags.map((f) => `--${f.name}`), "--help"].join(" ");
    return `        ${c.name}) opts="${flags}" ;;`;
  }).join("\n");
  const bash =
    `# dxenstore completion (bash). Install: dxenstore completion bash > /etc/bash_completion.d/dxenstore
_dxenstore() {
    local cur cmd opts i
    cur="\${COMP_WORDS[COMP_CWORD]}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "\${COMP_WORDS[i]}" in
            -s|--socket|--sim|--domid|--timeout) ((i++)) ;;
            -*) ;;
            *) cmd="\${COMP_WORDS[i]}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "${names} --socket --sim --domid --timeout --help" -- "$cur"))
        return
    fi
    opts=""
    case "$cmd" in
${cases}
        help) COMPREPLY=($(compgen -W "${names}" -- "$cur")); return ;;
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ "$cur" == /* || -z "$cur" ]]; then
        local IFS=$'\\n'
        COMPREPLY=($(compgen -W "$(dxenstore "\${COMP_WORDS[@]:1:i-1}" __complete "\${cur:-/}" 2>/dev/null)" -- "$cur"))
        compopt -o nospace 2>/dev/null
    fi
}
complete -F _dxenstore dxenstore
`;
  if (shell === "bash") return bash;
  return `# dxenstore completion (zsh, through bash completion). Install: dxenstore completion zsh > ~/.zsh/_dxenstore; source it
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}

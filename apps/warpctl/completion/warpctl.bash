# bash completion for warpctl (installed to share/bash-completion/completions/warpctl).
# Completes commands, their sub-commands and flags; keys and globs are the user's.
_warpctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  local commands="get set del ttl exists incr mget scan stats ping members health patterns validate hotkeys help"
  local globals="--node --json --output --timeout --tls-cert --tls-key --tls-ca --help"
  case $prev in
    --output|-o) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
    --file|--tls-cert|--tls-key|--tls-ca) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --node|--timeout|--ttl|--count|--limit|--cursor) return ;;
  esac
  # The command is the first word that is not a flag or a flag's value.
  local i cmd="" sub=""
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      --node|--output|-o|--timeout|--tls-cert|--tls-key|--tls-ca|--ttl|--file|--count|--limit|--cursor)
        ((i++)) ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
    esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
    return
  fi
  case $cmd in
    set) COMPREPLY=($(compgen -W "--ttl --file - $globals" -- "$cur")) ;;
    scan) COMPREPLY=($(compgen -W "--count --limit --cursor $globals" -- "$cur")) ;;
    health) COMPREPLY=($(compgen -W "--cluster $globals" -- "$cur")) ;;
    patterns)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "list set rm" -- "$cur"))
      elif [[ $sub == set && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "strong_local eventual_distributed strong_distributed" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$globals" -- "$cur"))
      fi ;;
    members)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "list add remove $globals" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$globals" -- "$cur"))
      fi ;;
    help) [[ -z $sub ]] && COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$globals" -- "$cur")) ;;
  esac
}
complete -F _warpctl warpctl

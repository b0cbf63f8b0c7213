# Shared by the command-line tests: arguments, temp dir, and assertions that name what failed.
set -u
BIN="$1"; WORK="$2"; MPIEXEC="$3"
rm -rf "$WORK"; mkdir -p "$WORK"
FAILED=0
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# expect_status WANT DESCRIPTION -- COMMAND...: runs COMMAND, output in $WORK/out.txt
expect_status() {
  local want="$1" what="$2"; shift 3
  "$@" >"$WORK/out.txt" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit status $got, expected $want"; sed 's/^/    /' "$WORK/out.txt" | head -20; FAILED=1
  else
    echo "ok: $what"
  fi
}
# expect_output TEXT DESCRIPTION: the last command's output contains TEXT
expect_output() {
  if ! grep -qF -- "$1" "$WORK/out.txt"; then
    echo "FAIL: $2: output lacks '$1'"; sed 's/^/    /' "$WORK/out.txt" | head -20; FAILED=1
  fi
}
finish() {
  if [ "$FAILED" = 0 ]; then echo "all checks passed"; exit 0; else exit 1; fi
}

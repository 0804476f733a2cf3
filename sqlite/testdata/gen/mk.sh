#!/bin/bash
# mk.sh N: the generator for schema version N
N=$1
dir=$(dirname "$0")
awk -v N=$N '
/^\t\/\/v>=[0-9]+$/ { split($0, a, ">="); stack[++d] = (a[2]+0 <= N); next }
/^\t\/\/v<[0-9]+$/ { split($0, a, "<"); stack[++d] = (N < a[2]+0); next }
/^\t\/\/end$/ { d--; next }
{ ok = 1; for (i = 1; i <= d; i++) if (!stack[i]) ok = 0; if (ok) print }
' "$dir/main.go.in"

#!/usr/bin/env bash
# Dispatch benchmark (not a test): where a request is served matters once the content outgrows one node's
# memory. A trace of Zipf-distributed requests (bench/zipf.lua, a new connection each) through node 1 over
# a file set several times one node's page-cache share. Every node holds the whole set in its own copy on
# disk (separate page caches); each node's nginx runs in a memory cgroup (its page cache capped) with its
# disk reads throttled (blkio), so that a cache miss costs what a disk read costs. The policies take turns,
# each on a fresh cluster with every page cache dropped: round-robin (the baseline LARD was measured
# against), content (static placement: the set cut into blocks of files, dealt to the nodes in turn),
# hash, lard, lard-r. Each: a warm-up run, then the measured run (the same request sequence for all):
# req/s, p99, the requests and disk reads of each node, and the cluster's cache hit rate
# (1 - bytes read from disk / bytes served).
# Writes out/bench-dispatch/results.json and .png, prints a Markdown table; with --docs, puts both into
# docs/dispatch.md and docs/benchmarks.md.
#   bench/dispatch.sh [--seconds S] [--warmup S] [--files N] [--file-kb K] [--memory-mb M] [--read-mbps R]
#                     [--alpha A] [--policies p1,p2] [--docs]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=15 warmup=25 files=2400 file_kb=32 memory_mb=32 read_mbps=2 alpha=0.9 docs=0
policies=round-robin,content,hash,lard,lard-r
usage="usage: bench/dispatch.sh [--seconds S] [--warmup S] [--files N] [--file-kb K] [--memory-mb M] [--read-mbps R] [--alpha A] [--policies LIST] [--docs]"
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --file-kb) file_kb=$2; shift 2 ;;
    --memory-mb) memory_mb=$2; shift 2 ;;
    --read-mbps) read_mbps=$2; shift 2 ;;
    --alpha) alpha=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    --docs) docs=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
for p in ${policies//,/ }; do
  case $p in round-robin|content|hash|lard|lard-r|least-conn) ;; *) echo "unknown policy: $p" >&2; exit 2 ;; esac
done
mem_cg=/sys/fs/cgroup/memory blk_cg=/sys/fs/cgroup/blkio
[ -d "$mem_cg" ] && [ -d "$blk_cg" ] || {
  echo "bench/dispatch.sh needs the cgroup v1 memory and blkio controllers (at $mem_cg, $blk_cg)" >&2; exit 2; }
./scripts/setup
./scripts/build
out=$root/out/bench-dispatch
mkdir -p "$out"
rm -f "$out"/*.out "$out"/runs.tsv
batonctl=$root/build/ctl/batonctl
# The block device holding the files: blkio throttles per device.
dev=$(stat -c '%d' "$out")
disk=$(lsblk -no MAJ:MIN,TYPE "$(df --output=source "$out" | tail -1)" 2>/dev/null | awk '$2 == "disk" {print $1}' | head -1)
[ -n "$disk" ] || disk="$((dev >> 8)):$((dev & 255))"

cgroups() { for n in 1 2 3; do echo "baton-dispatch-n$n"; done; }
cleanup() {
  ./scripts/testbed down >/dev/null 2>&1 || true
  for g in $(cgroups); do rmdir "$mem_cg/$g" "$blk_cg/$g" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- the file set: each node its own copy (not hard links: one page cache per node) ---------------------
set_id="$files-$file_kb"
if [ "$(cat "$out/files/set" 2>/dev/null)" != "$set_id" ]; then
  rm -rf "$out/files"
  mkdir -p "$out/files/n1/z"
  for i in $(seq 1 "$files"); do head -c $((file_kb * 1024)) /dev/urandom > "$out/files/n1/z/$(printf %05d "$i").bin"; done
  for n in 2 3; do cp -r "$out/files/n1" "$out/files/n$n"; done
  echo "$set_id" > "$out/files/set"
fi
sync

# --- one row -------------------------------------------------------------------------------------------
# content_rules POLICY: the [content] section every node gets.
content_rules() {
  echo "[content]"
  echo "default = [1]"
  if [ "$1" = content ]; then
    # Blocks of 100 files (/z/000..., /z/001...) dealt to the nodes in turn: the hottest files all in
    # node 1's first block, as a static partition made without the trace would put them.
    for b in $(seq 0 $(((files - 1) / 100 + 1))); do
      printf '[[content.rules]]\nprefix = "/z/%03d"\nnodes = [%d]\n\n' "$b" $((b % 3 + 1))
    done
  else
    printf '[[content.rules]]\nprefix = "/z/"\npolicy = "%s"\n' "$1"
  fi
}

configure() {  # policy
  for n in 1 2 3; do
    local conf=$root/out/testbed/n$n/batond.toml
    sed -i '/^\[content\]/,$d' "$conf"
    content_rules "$1" >> "$conf"
    "$batonctl" -s "/run/baton-bt/n$n.sock" reload > /dev/null || { echo "node $n refused the $1 config" >&2; exit 1; }
    ln -sfn "$out/files/n$n/z" "$root/out/testbed/www/n$n/z"
  done
}

# Every process of node N's nginx into its cgroups, capped.
confine() {
  for n in 1 2 3; do
    local g=baton-dispatch-n$n
    mkdir -p "$mem_cg/$g" "$blk_cg/$g"
    echo $((memory_mb * 1024 * 1024)) > "$mem_cg/$g/memory.limit_in_bytes"
    echo "$disk $((read_mbps * 1024 * 1024))" > "$blk_cg/$g/blkio.throttle.read_bps_device"
    local master
    master=$(cat "$root/out/testbed/n$n/nginx.pid")
    for pid in $master $(pgrep -P "$master"); do
      echo "$pid" > "$mem_cg/$g/cgroup.procs"
      echo "$pid" > "$blk_cg/$g/cgroup.procs"
    done
  done
}

disk_read() { awk '$2 == "Read" {s += $3} END {print s + 0}' "$blk_cg/baton-dispatch-n$1/blkio.throttle.io_service_bytes"; }
served() { grep -c '/z/' "$root/out/testbed/n$1/access.log" || true; }

load() {  # seconds seed
  BATON_ZIPF_FILES=$files BATON_ZIPF_ALPHA=$alpha BATON_ZIPF_SEED=$2 ip netns exec bt-client \
    wrk -t2 -c32 -d"$1"s --timeout 10s -s "$root/bench/zipf.lua" "http://10.211.0.1:80/"
}

row() {  # policy
  local p=$1
  ./scripts/testbed up --datapath ebpf > /dev/null
  configure "$p"
  confine
  sync
  echo 3 > /proc/sys/vm/drop_caches
  load "$warmup" 1 > "$out/$p-warmup.out" 2>&1
  local before_read=() before_served=()
  for n in 1 2 3; do before_read[n]=$(disk_read "$n"); before_served[n]=$(served "$n"); done
  load "$seconds" 2 > "$out/$p.out" 2>&1
  local line
  line=$(grep '^BATON_WRK' "$out/$p.out") || { cat "$out/$p.out" >&2; echo "$p: no summary from wrk" >&2; exit 1; }
  {
    printf '%s\t%s' "$p" "$line"
    for n in 1 2 3; do
      printf '\tn%d_requests=%d n%d_disk=%d' "$n" $(($(served "$n") - before_served[n])) "$n" $(($(disk_read "$n") - before_read[n]))
    done
    printf '\n'
  } >> "$out/runs.tsv"
  ./scripts/testbed down > /dev/null
  for g in $(cgroups); do rmdir "$mem_cg/$g" "$blk_cg/$g" 2>/dev/null || true; done
  echo "$p: $(grep -o 'requests=[0-9]*' <<< "$line") in ${seconds} s" >&2
}

echo "file set: $files files x $file_kb KiB = $((files * file_kb / 1024)) MiB per node; page cache per node: at most $memory_mb MiB; disk reads: $read_mbps MiB/s per node; Zipf alpha $alpha" >&2
for p in ${policies//,/ }; do row "$p"; done
/usr/bin/python3 "$root/bench/dispatch_report.py" "$out" "$files" "$file_kb" "$memory_mb" "$read_mbps" "$alpha" \
  "$warmup" "$seconds" "$docs"

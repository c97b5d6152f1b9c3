#!/usr/bin/env bash
# bench-turn.sh: relayed packets/s and Mbit/s through edgenode's embedded
# TURN server vs coturn (turnserver 4.6, Debian package coturn), over
# TURN/UDP and TURN/TCP, measured in the same run with the same load
# generator (turnutils_uclient: CLIENTS allocations, each sending MSGS
# datagrams of LEN bytes to turnutils_peer, which echoes them back through
# the relay). Both servers: loopback, REST credentials, loopback peer
# allowed, no bandwidth or quota limits in the way.
#
# Reported per server: echoed packets/s and payload Mbit/s (both relay
# directions counted), loss, and server CPU ms per 1000 relayed packets
# (from /proc, robust on a shared machine). Ratio = node ÷ coturn
# (throughput: higher is better; CPU: lower is better).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-10}
MSGS=${MSGS:-1000}
LEN=${LEN:-1000}
PEER_PORT=${PEER_PORT:-35480}
COTURN_PORT=${COTURN_PORT:-35478}

for tool in turnserver turnutils_uclient turnutils_peer; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP bench-turn: $tool missing (install Debian package coturn: scripts/deps.sh test)"
    exit 0
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/turnnode" ./turn/internal/turnnode

turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$tmp/peer.log" 2>&1 &
pids+=($!)

"$tmp/turnnode" -udp 127.0.0.1:0 -tcp 127.0.0.1:0 -tls off \
  -allow "127.0.0.1:$PEER_PORT,127.0.0.1:$((PEER_PORT + 1))" \
  -bandwidth 1000000000 -user-quota 100000 -alloc-rate 100000 -alloc-burst 100000 \
  >"$tmp/node.out" 2>"$tmp/node.err" &
node_pid=$!
pids+=($node_pid)

secret=$(head -c 24 /dev/urandom | base64)
turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 -p "$COTURN_PORT" \
  --use-auth-secret --static-auth-secret="$secret" --realm=edgenode \
  --allow-loopback-peers --no-tls --no-dtls --no-cli --no-tcp-relay \
  --log-file="$tmp/coturn.log" --simple-log --pidfile="$tmp/coturn.pid" \
  --userdb="$tmp/coturn.db" >/dev/null 2>&1 &
coturn_pid=$!
pids+=($coturn_pid)

for _ in $(seq 50); do
  [ -s "$tmp/node.out" ] && break
  sleep 0.1
done
read -r node_line <"$tmp/node.out" || { echo "turnnode did not start:"; cat "$tmp/node.err"; exit 1; }
node_udp=$(sed -n 's/.*udp=127.0.0.1:\([0-9]*\).*/\1/p' <<<"$node_line")
node_tcp=$(sed -n 's/.*tcp=127.0.0.1:\([0-9]*\).*/\1/p' <<<"$node_line")
node_user=$(sed -n 's/.*username=\([^ ]*\).*/\1/p' <<<"$node_line")
node_pass=$(sed -n 's/.*password=\([^ ]*\).*/\1/p' <<<"$node_line")
sleep 0.5 # coturn

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT TCPFLAG CRED-ARGS... → prints "pps mbit loss cpu_ms_per_1000"
run() {
  local pid=$1 port=$2 tcp=$3; shift 3
  local c0 t0 t1 c1 out
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  out=$(timeout 300 turnutils_uclient "$@" $tcp -e 127.0.0.1 -r "$PEER_PORT" -p "$port" \
    -n "$MSGS" -m "$CLIENTS" -l "$LEN" -z 0 -c 127.0.0.1 2>&1 || true)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  local recv sent
  recv=$(grep -o 'tot_recv_msgs=[0-9]*' <<<"$out" | tail -1 | cut -d= -f2)
  sent=$(grep -o 'tot_send_msgs=[0-9]*' <<<"$out" | tail -1 | cut -d= -f2)
  awk -v r="${recv:-0}" -v s="${sent:-0}" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" \
    -v tck="$tck" -v len="$LEN" 'BEGIN {
      dt = t1 - t0; relayed = s + r  # client→peer plus peer→client datagrams
      loss = s > 0 ? 100 * (s - r) / s : 100
      cpu = relayed > 0 ? 1000 * (c / tck) * 1000 / relayed : 0
      printf "%.0f %.1f %.1f %.2f\n", r / dt, 2 * r * len * 8 / dt / 1e6, loss, cpu }'
}

printf '%-9s %-9s %12s %10s %7s %18s\n' transport server "echo pkt/s" "Mbit/s" "loss%" "cpu ms/1k pkts"
for tr in udp tcp; do
  flag=""; nport=$node_udp
  if [ "$tr" = tcp ]; then flag="-t"; nport=$node_tcp; fi
  read -r n_pps n_mbit n_loss n_cpu < <(run "$node_pid" "$nport" "$flag" -u "$node_user" -w "$node_pass")
  read -r c_pps c_mbit c_loss c_cpu < <(run "$coturn_pid" "$COTURN_PORT" "$flag" -W "$secret" -u bench)
  printf '%-9s %-9s %12s %10s %7s %18s\n' "TURN/${tr^^}" edgenode "$n_pps" "$n_mbit" "$n_loss" "$n_cpu"
  printf '%-9s %-9s %12s %10s %7s %18s\n' "TURN/${tr^^}" coturn "$c_pps" "$c_mbit" "$c_loss" "$c_cpu"
  awk -v a="$n_pps" -v b="$c_pps" -v x="$n_mbit" -v y="$c_mbit" -v p="$n_cpu" -v q="$c_cpu" -v tr="${tr^^}" 'BEGIN {
    printf "TURN/%s ratio node÷coturn: packets/s %.2f, Mbit/s %.2f, cpu per packet %.2f\n",
      tr, (b > 0 ? a / b : 0), (y > 0 ? x / y : 0), (q > 0 ? p / q : 0) }'
done
echo "load: $CLIENTS allocations × $MSGS datagrams × $LEN B per server and transport (turnutils_uclient -z 0)"

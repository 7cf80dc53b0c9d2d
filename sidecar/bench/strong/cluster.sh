#!/bin/bash
# usage: cluster.sh BIN DIR BASEPORT   -> starts 3 warpd, RESP on BASEPORT+10+i
BIN=$1; DIR=$2; B=$3
rm -rf $DIR; mkdir -p $DIR
for i in 0 1 2; do
  peers=""
  for j in 0 1 2; do [ $j = $i ] && continue; peers="$peers${peers:+,}127.0.0.1:$((B+j))"; done
  nice -n 5 $BIN --name n$i --listen 127.0.0.1:$((B+i)) --http 127.0.0.1:0 --resp 127.0.0.1:$((B+10+i)) \
    --storage memory --data-dir $DIR/n$i --log-level warn --heartbeat-interval 100ms \
    --allow-unshared-storage --peers $peers --pattern 's:*=strong_distributed' --strong-engine raft \
    > $DIR/n$i.log 2>&1 &
  echo $! > $DIR/n$i.pid
done

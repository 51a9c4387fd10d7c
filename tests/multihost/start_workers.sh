#!/bin/sh
# Start the worker ranks of a gloo cluster the way a user starts them on each of their hosts
# (docs/distributed.md), here all on 127.0.0.1, then wait for them to end with the session.
#
#   start_workers.sh WORLD_SIZE MASTER_PORT [DELAY_S [RANK ...]]
#
# DELAY_S: seconds to wait before starting (a rank that joins late); RANK...: the ranks to
# start (default: 1 .. WORLD_SIZE-1; leave one out for a rank that never joins).
# PYTHON: the interpreter (default: python3); JOIN_TIMEOUT: the workers' --join-timeout.
# Each started worker's pid is written, one a line, to $PID_FILE when it is set.
set -eu
world=$1
port=$2
delay=${3:-0}
if [ $# -gt 3 ]; then
    shift 3
    ranks=$*
else
    ranks=$(seq 1 $((world - 1)))
fi
python=${PYTHON:-python3}
sleep "$delay"
for rank in $ranks; do
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=$world \
        "$python" -m pytest_edgeenergy worker --rank "$rank" \
        --join-timeout "${JOIN_TIMEOUT:-60}" &
    if [ -n "${PID_FILE:-}" ]; then
        echo $! >> "$PID_FILE"
    fi
done
wait

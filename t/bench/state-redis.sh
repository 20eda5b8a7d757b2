#!/bin/sh
# bench: the Redis state store against a real redis-server started here on
# loopback: the cost of one greylist check over TCP and over the unix socket,
# then Redis's memory for 1,000,000 triplets (INFO used_memory before/after).
# The memory store's numbers come from bench-state itself (run by make bench).
# Bounded: 1,000,000 checks at most, 4 client threads.
. "$(dirname "$0")/lib/redis-server.sh"

need_build t/bench-state
redis_start bench-pass
B="$BUILD/t/bench-state --password $REDIS_PASSWORD"
$B --redis "$REDIS_TCP" --latency-only || exit 1
$B --redis "$REDIS_UNIX" --count "${STATE_BENCH_COUNT:-1000000}" --threads 4 || exit 1

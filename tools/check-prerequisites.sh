#!/usr/bin/env bash
# Fails with one line naming what to install when the machine lacks Python 3.11+ or JDK 17+.
# With --python-only (make build: a tarball needs no rules engine) the JDK is not checked.
set -u
python=${1:-python3}
scope=${2:-all}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "durable.eda needs Python 3.11 or newer: install it, or run make with PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "durable.eda needs Python's venv and ensurepip modules: install your distribution's python3-venv package" >&2
  exit 1
fi
[ "$scope" = --python-only ] && exit 0
java_bin=java
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java_bin="$JAVA_HOME/bin/java"
version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
if [ -z "$version" ] || [ "$version" -lt 17 ]; then
  echo "ansible-rulebook needs a JDK 17 or newer with java on PATH (found: ${version:-none}): install e.g. openjdk-17-jdk-headless" >&2
  exit 1
fi

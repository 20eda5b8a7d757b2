#!/bin/sh
# The man pages stay honest: lint-clean under mandoc and groff, and every key
# of conf/regmilter.ini documented in regmilter.ini(5). See t/man-check.
command -v mandoc >/dev/null 2>&1 || { echo "# skip: mandoc not found (package mandoc)"; exit 77; }
command -v groff >/dev/null 2>&1 || { echo "# skip: groff not found (package groff)"; exit 77; }
exec "$(dirname "$0")/../man-check"

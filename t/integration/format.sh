#!/bin/sh
# Every C++ file clang-formatted with the checked-in .clang-format (issue 7's
# hygiene): make check fails on a file that is not. See t/format-check.
exec "$(dirname "$0")/../format-check"

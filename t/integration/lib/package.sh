# package.sh: the Debian package of this tree, built once per make check
# (POSIX sh, sourced after common.sh).
#
# package_build     Sets DEB (the .deb) and CHANGES (the .changes) in
#                   $BUILD/deb, building them with dpkg-buildpackage -us -uc -b
#                   unless the ones there are newer than every packaged input.
#                   The build runs on a copy of the tree (mtimes kept) in
#                   $BUILD/deb/src, so the tree itself gets no debian/ debris.
#                   It reuses $BUILD's objects (REGMILTER_BUILD, see
#                   debian/rules); a sanitizer build is skipped (exit 77).
#                   No -dbgsym package (noautodbgsym:
#                   compressing its debug data was most of the build time).
#                   Sets PACKAGE_SECONDS (0 when reused)
#                   and PACKAGE_HOW. Exits 1 with the build log's end on failure.

_pkg_inputs() {   # every file whose change makes a new package
    find "$top/debian" "$top/conf" "$top/man" "$top/contrib" "$top/lib" "$top/milter" "$top/Makefile" "$top/README" -type f
    for _b in regmilter regmilter-query regmilter-zone; do
        [ -f "$BUILD/$_b" ] && echo "$BUILD/$_b"
    done
}

package_build() {
    need_cmd dpkg-buildpackage dh lintian dpkg-deb
    _out=$BUILD/deb
    DEB=$(ls "$_out"/regmilter_*.deb 2>/dev/null | head -n 1)
    CHANGES=$(ls "$_out"/regmilter_*.changes 2>/dev/null | head -n 1)
    if [ -n "$DEB" ] && [ -n "$CHANGES" ] && [ -z "$(_pkg_inputs | while read -r _f; do
        [ "$_f" -nt "$DEB" ] && echo "$_f"; done | head -n 1)" ]; then
        PACKAGE_SECONDS=0
        PACKAGE_HOW="reused $DEB (newer than every input)"
        return 0
    fi
    # A sanitizer build is no package, and compiling the tree once more for it
    # would double make check's time: the plain make check builds the package.
    if nm "$BUILD/regmilter-query" 2>/dev/null | grep -q -E '__(asan|ubsan|tsan)_'; then
        skip "$BUILD is a sanitizer build: the package is built and checked by make check without SANITIZE"
    fi
    rm -rf "$_out"
    mkdir -p "$_out/src"
    for _e in "$top"/* "$top"/.clang-format; do
        [ -e "$_e" ] || continue
        case $BUILD/ in "$_e"/*) continue ;; esac   # the build directory (and $_out in it)
        case $(basename "$_e") in build) continue ;; esac
        cp -a "$_e" "$_out/src/"
    done
    _t0=$(date +%s)
    if ! (cd "$_out/src" && DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym" DEB_BUILD_PROFILES=nocheck \
        REGMILTER_BUILD="$BUILD" dpkg-buildpackage -us -uc -b) > "$_out/build.log" 2>&1; then
        echo "# dpkg-buildpackage failed; the end of $_out/build.log:"
        tail -n 30 "$_out/build.log" | sed 's/^/#   /'
        exit 1
    fi
    PACKAGE_SECONDS=$(($(date +%s) - _t0))
    PACKAGE_HOW="built in $PACKAGE_SECONDS s from the objects in $BUILD ($(grep -c '^ccache\|^g++\|^c++' "$_out/build.log") compiler runs)"
    DEB=$(ls "$_out"/regmilter_*.deb | head -n 1)
    CHANGES=$(ls "$_out"/regmilter_*.changes | head -n 1)
}

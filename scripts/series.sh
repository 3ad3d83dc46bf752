#!/usr/bin/env bash
# make series: turn patches/<kver>/series (the C patches and the repository
# files each one adds) into an in-tree RFC patch series against the pristine
# source of the reference kernel (Debian's linux-source-<kver>), as
# `git format-patch` output with a cover letter, in build/series/.
#
#   scripts/series.sh                  write build/series/
#   scripts/series.sh --export         after editing the commits of
#                                      build/series.work (git rebase -i,
#                                      git commit --amend), write them back:
#                                      patches/<kver>/*.patch (the parts
#                                      that are not repository files) and
#                                      the repository files of the series
#   scripts/series.sh --verify [DIR]   also: the output applies with `git am`
#                                      to a fresh copy of the pristine files,
#                                      every patch is checkpatch --strict
#                                      clean, and arch/x86/kvm after the
#                                      series is what the out-of-tree build
#                                      in DIR (default build/current)
#                                      compiled
#
# The same patches and files make the out-of-tree build (scripts/build.sh),
# so the two forms cannot drift; --verify is the check that they did not.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

verify=0 export=0 against=$KVMRS_ROOT/build/current
while [ $# -gt 0 ]; do
	case "$1" in
	--verify) verify=1; shift; [ $# -gt 0 ] && { against=$1; shift; } ;;
	--export) export=1; shift ;;
	*) die "series: unknown argument '$1' (usage: scripts/series.sh [--export | --verify [DIR]])" ;;
	esac
done

src=$KVMRS_CACHE/src/linux-source-$KVER
[ -f "$src/Makefile" ] || die "series: the pristine source $src is missing: run 'make kernel' first"
dir=$KVMRS_ROOT/patches/$KVER
series_file=$dir/series
out=$KVMRS_ROOT/build/series
work=$KVMRS_ROOT/build/series.work
# The pristine files the series touches; a patch of the series that touches
# anything else fails to apply, which says to add it here.
paths=("$OOT_HEADER" arch/x86/kvm virt/kvm tools/testing/selftests/kvm)

export GIT_AUTHOR_NAME="kvm-rs developers" GIT_AUTHOR_EMAIL="kvm-rs@localhost"
export GIT_COMMITTER_NAME="kvm-rs developers" GIT_COMMITTER_EMAIL="kvm-rs@localhost"
export GIT_COMMITTER_DATE="2026-12-01T00:00:00Z"

if [ "$export" = 1 ]; then
	[ -d "$work/.git" ] || die "series: no $work: run 'make series' first, then edit its commits"
	mapfile -t lines < <(grep -v -E '^[[:space:]]*(#|$)' "$series_file")
	have=$(git -C "$work" rev-list --count base..HEAD)
	[ "$have" = "${#lines[@]}" ] \
		|| die "series: $work has $have commits and $series_file ${#lines[@]} lines: add or remove the line of a new or dropped patch first"
	excl=()
	for l in "${lines[@]}"; do
		read -r _ files <<< "$l"
		for m in $files; do excl+=(":!${m#*:}"); done
	done
	tmp=$(mktemp -d)
	git -C "$work" format-patch -q --no-signature --zero-commit --no-numbered \
		-o "$tmp" base..HEAD -- . "${excl[@]}"
	mapfile -t new < <(cd "$tmp" && ls 0*.patch)
	rm -f "$dir"/0*.patch
	cp "$tmp"/0*.patch "$dir/"
	rm -rf "$tmp"
	{
		sed -n '/^#/p' "$series_file"
		for i in "${!lines[@]}"; do
			read -r _ files <<< "${lines[$i]}"
			echo "${new[$i]}${files:+ $files}"
		done
	} > "$series_file.new" && mv "$series_file.new" "$series_file"
	for l in "${lines[@]}"; do
		read -r _ files <<< "$l"
		for m in $files; do cp "$work/${m#*:}" "$KVMRS_ROOT/${m%%:*}"; done
	done
	ok "series: wrote ${#new[@]} patches to patches/$KVER and the repository files back from $work"
	exit 0
fi

# pristine DIR: a git repository of the pristine files, one commit "base".
pristine() {
	rm -rf "$1"; mkdir -p "$1"
	(cd "$src" && tar -c "${paths[@]}") | tar -x -C "$1"
	git -C "$1" init -q
	git -C "$1" add -A
	git -C "$1" commit -q -m "base: linux-source-$KVER $(cat "$KVMRS_CACHE/src/linux-source-$KVER.version" 2>/dev/null)"
	git -C "$1" tag base
}

step "series: applying patches/$KVER/series to the pristine files of $src"
pristine "$work"
n=0
while read -r name files; do
	case "$name" in ''|'#'*) continue ;; esac
	p=$dir/$name
	[ -f "$p" ] || die "series: $series_file names $name, which does not exist"
	git -C "$work" am -q --signoff "$p" || die "series: $name does not apply to the pristine $KVER files"
	for m in $files; do
		from=${m%%:*} to=${m#*:}
		[ -f "$KVMRS_ROOT/$from" ] || die "series: $series_file: $from does not exist"
		mkdir -p "$(dirname "$work/$to")"
		cp "$KVMRS_ROOT/$from" "$work/$to"
		git -C "$work" add "$to"
	done
	[ -n "$files" ] && git -C "$work" commit -q --amend --no-edit
	n=$((n + 1))
done < "$series_file"

# Only 7.3 is sent upstream as an RFC series; other series stop here, with
# build/series.work ready for editing and --export.
[ -f "$dir/cover-letter" ] || {
	ok "series: $work holds patches/$KVER applied ($n patches); no RFC series for $KVER (no patches/$KVER/cover-letter): edit there, then --export"
	exit 0
}
rm -rf "$out"; mkdir -p "$out"
git -C "$work" format-patch -q --cover-letter --subject-prefix="RFC PATCH" \
	--zero-commit --no-signature -o "$out" base..HEAD

# The cover letter: the template, with the results taken from results.rst
# (between its series-results markers), not typed into the letter.
cover=$out/0000-cover-letter.patch
results=$(sed -n '/^\.\. series-results-begin/,/^\.\. series-results-end/p' \
	"$KVMRS_ROOT/Documentation/kvm-rs/results.rst" | sed '1d;$d')
[ -n "$results" ] || die "series: no series-results markers in Documentation/kvm-rs/results.rst"
# The differential counts: from the JSON result of the last make check's
# Intel eptad=0 Rust run, if there is one.
python3 - "$cover" "$dir/cover-letter" "$results" "$(git -C "$KVMRS_ROOT" rev-parse --short HEAD)" \
	"$KVMRS_ROOT/build/logs/guest-intel-eptad0-rust.json" <<'PY'
import json, os, sys
cover, template, results, commit, diffjson = sys.argv[1:]
if os.path.exists(diffjson):
    r = json.load(open(diffjson))
    c = r["counters"]
    mism = {k[len("diff_"):-len("_mismatch")]: v for k, v in c.items() if k.endswith("_mismatch")}
    diff = ("Differential check, Intel EPT eptad=0 pml=0, in the last make check\n"
            "(build/logs/%s, verdict %s):\n"
            "%d snapshots checked against the C, %d access-track and %d\n"
            "write-protect fixes agreed; mismatches per field: %s\n"
            "(its diff-mode test injects one of each field).\n"
            % (os.path.basename(diffjson), r["verdict"], c["diff_checked"],
               c["diff_decision_acc_track"], c["diff_decision_write_protect"],
               ", ".join("%s %d" % kv for kv in sorted(mism.items()))))
else:
    diff = "(No differential counts: build/logs has no make check result.)\n"
text = open(template).read().replace("@RESULTS@", results.strip("\n")).replace("@COMMIT@", commit)
text = text.replace("@DIFF@", diff.rstrip("\n"))
subject, _, body = text.partition("\n\n")
c = open(cover).read()
c = c.replace("*** SUBJECT HERE ***", subject.strip()).replace("*** BLURB HERE ***", body.strip("\n"))
open(cover, "w").write(c)
PY
ok "series: $n patches and a cover letter in ${out#"$KVMRS_ROOT"/}"

[ "$verify" = 1 ] || exit 0

rc=0
step "series: git am of build/series onto a fresh copy of the pristine files"
fresh=$KVMRS_ROOT/build/series.am
pristine "$fresh"
mapfile -t am < <(ls "$out"/0*-*.patch | grep -v '/0000-cover-letter\.patch$')
if [ ${#am[@]} -gt 0 ] && git -C "$fresh" am -q "${am[@]}" 2>"$fresh.log"; then
	echo "ok - git am: $(git -C "$fresh" rev-list --count base..HEAD) patches applied"
else
	sed 's/^/    /' "$fresh.log"; echo "not ok - git am of build/series"; rc=1
fi

step "series: checkpatch.pl --strict on every patch"
for p in "$out"/0*-*.patch; do
	case "$(basename "$p")" in 0000-cover-letter.patch) continue ;; esac
	# FILE_PATH_CHANGES: "does MAINTAINERS need updating?" for new files;
	# the cover letter says who maintains them.
	if o=$(cd "$src" && perl scripts/checkpatch.pl --no-tree --strict --ignore FILE_PATH_CHANGES -q "$p" 2>&1); then
		echo "ok - checkpatch $(basename "$p")"
	else
		printf '%s\n' "$o" | sed 's/^/    /'; echo "not ok - checkpatch $(basename "$p")"; rc=1
	fi
done

step "series: arch/x86/kvm after the series against the out-of-tree build in ${against#"$KVMRS_ROOT"/}"
if [ ! -d "$against/arch/x86/kvm" ]; then
	echo "not ok - no out-of-tree build in $against: run 'make' first"; rc=1
else
	against=$(cd "$against" && pwd -P)
	cp "$fresh/arch/x86/kvm/Makefile" "$fresh.Makefile"
	oot_kvm_makefile "$fresh.Makefile"
	drift=0 files=0
	while IFS= read -r f; do
		files=$((files + 1))
		theirs=$fresh/$f
		[ "$f" = arch/x86/kvm/Makefile ] && theirs=$fresh.Makefile
		if ! cmp -s "$theirs" "$against/$f"; then
			echo "    differs: $f"; drift=1
		fi
	done < <(cd "$fresh" && { find arch/x86/kvm -type f; echo "$OOT_HEADER"; } | sort)
	if [ "$drift" = 0 ]; then
		echo "ok - the $files files of arch/x86/kvm and $OOT_HEADER after the series are the ones the out-of-tree build compiled"
	else
		echo "not ok - the series and the out-of-tree build differ (rebuild with 'make', or fix patches/$KVER/series)"; rc=1
	fi
fi
exit $rc

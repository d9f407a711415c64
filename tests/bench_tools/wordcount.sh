#!/bin/sh
# The word-count benchmark's own tools (issue 7; tests/bench/wordcount.sh):
# wc_baseline on the EXAMPLES.md "MapReduce (Disco)" text gives exactly the
# counts there, alphabetical and --by-count (ties alphabetical), agrees with
# the coreutils pipeline across its 1 MB block boundaries, and gentext is
# deterministic with an exact length.
. "$(dirname "$0")/../lib.sh"
WC=$TOOLS/wc_baseline
GEN=$TOOLS/gentext
for f in "$WC" "$GEN"; do [ -x "$f" ] || { fail "$f is missing (make tools)"; finish; }; done
TAB=$(printf '\t')

# ---- ../shared/EXAMPLES.md, "MapReduce (Disco)", the quoted passage ----
cat >"$T/ex.txt" <<'TEXT'
"There are known knowns. These are things we know that we know. There are
known unknowns. That is to say, there are things that we know we do not
know. But there are also unknown unknowns. There are things we do not
know we do not know."
TEXT
cp "$ROOT/conf/jobs/words.counts" "$T/ex.words"
cp "$ROOT/conf/jobs/words.by-count" "$T/ex.counts"
"$WC" "$T/ex.txt" >"$T/ex.out"
check "EXAMPLES.md text: exact counts, by word" cmp "$T/ex.out" "$T/ex.words"
"$WC" --by-count "$T/ex.txt" >"$T/ex.byc"
check "EXAMPLES.md text: --by-count, ties alphabetical" cmp "$T/ex.byc" "$T/ex.counts"
"$WC" <"$T/ex.txt" >"$T/ex.stdin"
check "stdin counts the same as a file" cmp "$T/ex.stdin" "$T/ex.words"

# ---- the word definition: letters only, lower-cased, files do not join ----
printf 'ABC abc\nAbC-x caf\303\251 it'"'"'s 42nd\tR2D2' >"$T/d1.txt"
printf 'ab' >"$T/d2.txt"
printf 'c\n' >"$T/d3.txt"
"$WC" "$T/d1.txt" "$T/d2.txt" - "$T/d3.txt" </dev/null >"$T/d.out"
printf 'ab\t1\nabc\t3\nc\t1\ncaf\t1\nd\t1\nit\t1\nnd\t1\nr\t1\ns\t1\nx\t1\n' >"$T/d.want"
check "letters only, lower-cased, a file's end ends a word" cmp "$T/d.out" "$T/d.want"
: | "$WC" >"$T/empty.out"
check "no input, no output" [ ! -s "$T/empty.out" ]
"$WC" --bogus >/dev/null 2>&1
check "an unknown option is a usage error (2)" [ $? = 2 ]
"$WC" "$T/nonexistent" >/dev/null 2>&1
check "a missing file fails (1)" [ $? = 1 ]

# ---- one word longer than the 1 MB read block ----
head -c 2500000 /dev/zero | tr '\0' 'q' >"$T/long.txt"
printf ' Q q\n' >>"$T/long.txt"
"$WC" "$T/long.txt" | awk -F'\t' '{ print length($1), $2 }' >"$T/long.out"
printf '1 2\n2500000 1\n' >"$T/long.want"
check "a word of 2.5 MB across blocks" cmp "$T/long.out" "$T/long.want"

# ---- gentext: exact length, same bytes for the same arguments ----
for n in 0 1 1000 1048577; do
	check "gentext $n gives $n bytes" [ "$("$GEN" $n | wc -c)" -eq $n ]
done
"$GEN" 3M 7 >"$T/g1"
"$GEN" 3M 7 >"$T/g2"
"$GEN" 3M 8 >"$T/g3"
check "gentext 3M (suffix) gives 3145728 bytes" [ "$(wc -c <"$T/g1")" -eq 3145728 ]
check "gentext: the same seed twice, the same bytes" cmp -s "$T/g1" "$T/g2"
check "gentext: another seed, other bytes" sh -c "! cmp -s '$T/g1' '$T/g3'"
"$GEN" 100000 7 >"$T/g4"
check "gentext: a shorter run is a prefix" sh -c "head -c 100000 '$T/g1' | cmp -s - '$T/g4'"
check "gentext: lines of at most 100 characters" sh -c "[ \$(awk '{ if (length(\$0) > m) m = length(\$0) } END { print m }' '$T/g1') -le 100 ]"
"$GEN" >/dev/null 2>&1
check "gentext without BYTES is a usage error (2)" [ $? = 2 ]

# ---- against coreutils on 3 MB: words cut by the 1 MB blocks, stdin too ----
(LC_ALL=C; export LC_ALL; tr -cs A-Za-z '\n' <"$T/g1" | tr A-Z a-z | sort | uniq -c) |
	awk 'NF == 2 { printf "%s\t%s\n", $2, $1 }' >"$T/g.want"
"$WC" "$T/g1" >"$T/g.out"
check "3 MB of gentext: the same counts as tr | sort | uniq -c" cmp -s "$T/g.out" "$T/g.want"
cat "$T/g1" | "$WC" >"$T/g.pipe"
check "the same from a pipe" cmp -s "$T/g.pipe" "$T/g.want"
"$WC" --by-count "$T/g1" >"$T/g.byc"
LC_ALL=C sort -s -t "$TAB" -k2,2nr "$T/g.want" >"$T/g.bycwant"
check "3 MB: --by-count is by count, then by word" cmp -s "$T/g.byc" "$T/g.bycwant"
check "3 MB: more than 50,000 distinct words" [ "$(wc -l <"$T/g.out")" -gt 50000 ]
finish

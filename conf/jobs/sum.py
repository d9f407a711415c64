#!/usr/bin/env python3
# A streaming reducer: "key TAB value" lines sorted by key on stdin, one
# "key TAB sum" line per key on stdout (Hadoop streaming style).
import sys

key, total = None, 0
for line in sys.stdin:
    k, _, v = line.rstrip("\n").partition("\t")
    if k != key:
        if key is not None:
            print(f"{key}\t{total}")
        key, total = k, 0
    total += int(v)
if key is not None:
    print(f"{key}\t{total}")

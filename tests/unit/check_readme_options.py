#!/usr/bin/env python3
"""The README's environment-variable table must be exactly what the options
table generates (tools/vam-options), so the docs cannot drift."""
import subprocess, sys

exe, readme = sys.argv[1], sys.argv[2]
generated = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
text = open(readme, encoding="utf-8").read()
begin, end = "<!-- options:begin -->\n", "<!-- options:end -->"
if begin not in text or end not in text:
    sys.exit("README.md has no options markers")
section = text.split(begin, 1)[1].split(end, 1)[0]
if section != generated:
    print("README options table is stale; regenerate with: build/tools/vam-options")
    print("--- README\n" + section + "--- generated\n" + generated)
    sys.exit(1)
print("README options table matches the options table")

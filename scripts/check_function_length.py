#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Fail when a C++ function body is longer than the limit without a written reason (issue 9).

Scans the C++ sources of src/, cli/, include/ and python/ (*.cpp, *.hpp, *.h, *.cc) and measures
every function body (free functions, member functions in or out of their class, constructors,
operators): its lines from the line of the opening brace to the line of the closing brace. Lambdas
and local classes count as part of the function that contains them.

A body longer than the limit passes only when the comment block directly above the function
(above its template line, if any) contains the marker

    // Long because: <why splitting it would hurt more than the length does>

Usage: check_function_length.py [--root DIR] [--limit N] [--list] [--skip FILE:FUNCTION]... [PATH...]
  PATH...  files or directories to scan instead of the default folders (relative to --root)
  --list   also print the long functions that carry a reason
  --skip   do not fail on FUNCTION of FILE (relative to --root; listed as skipped), e.g. while
           another change splits it
Exit status: 0 when every long function has a reason, 1 otherwise, 2 on a usage error.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass

MARKER = "Long because:"
DEFAULT_DIRS = ("src", "cli", "include", "python")
EXTENSIONS = (".cpp", ".hpp", ".h", ".cc")
# Blocks that are not function bodies when their header starts with one of these.
NON_FUNCTION_KEYWORDS = re.compile(r"^(?:template\s*<.*>\s*)?(?:namespace|class|struct|union|enum|extern)\b", re.S)


@dataclass
class Function:
    path: str
    name: str
    start_line: int  # first line of the declaration (1-based)
    open_line: int  # line of the body's opening brace
    close_line: int  # line of the body's closing brace
    reason: str | None

    @property
    def length(self) -> int:
        return self.close_line - self.open_line + 1


def strip_code(text: str) -> str:
    """Blank out comments, string and character literals (keeping newlines and offsets), so braces
    and parentheses in them do not count."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i + m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            blank(i + 1, j)
            i = j
        elif c in "\"'":
            # A digit separator (1'000'000) is not a character literal.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                if text[i - 1].isdigit() or re.match(r"[0-9a-fA-F]", text[i - 1]):
                    i += 1
                    continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "#" and (i == 0 or text[text.rfind("\n", 0, i) + 1 : i].strip() == ""):
            # Preprocessor line (with continuations): not code for this purpose.
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            blank(i, k)
            i = k
        else:
            i += 1
    return "".join(out)


def top_level(text: str, char: str) -> bool:
    """Whether `char` occurs in `text` outside parentheses, brackets and template angles."""
    depth = 0
    for k, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == char and depth == 0:
            return True
    return False


def function_name(header: str) -> str | None:
    """The name of the function a block header declares, or None if it declares none."""
    h = re.sub(r"\s+", " ", header).strip()
    if not h or NON_FUNCTION_KEYWORDS.match(h):
        return None
    h = re.sub(r"^template\s*<.*?>\s*(?=[A-Za-z_\[])", "", h)
    # "operator=" / "operator()" / "operator<" are names, not initializers or calls.
    scan = re.sub(r"operator\s*(\(\)|\[\]|[^\s(]+)", "operator_", h)
    scan = re.sub(r"__attribute__\s*\(\(.*?\)\)|\[\[.*?\]\]|\balignas\s*\(.*?\)", " ", scan)
    if top_level(scan, "="):
        return None  # an initializer: a table, a brace-initialized value, a lambda assigned to a name
    first_paren = scan.find("(")
    if first_paren <= 0:
        return None
    m = re.search(r"([~\w:]+)\s*(?:<[^()]*>)?\s*$", scan[:first_paren])
    name = m.group(1) if m else scan[:first_paren].strip()
    if name.endswith("operator_"):
        op = re.search(r"operator\s*(\(\)|\[\]|[^\s(]+)", h)
        name = name[: -len("operator_")] + "operator" + (op.group(1) if op else "")
    if name in {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignas", "requires"}:
        return None
    return name or None


def reason_above(lines: list[str], start_line: int) -> str | None:
    """The reason in the comment block directly above line `start_line` (1-based), if any."""
    k = start_line - 2
    block: list[str] = []
    while k >= 0:
        s = lines[k].strip()
        if s.startswith("//") or s.startswith("/*") or s.startswith("*") or s.endswith("*/"):
            block.append(s)
            k -= 1
        elif s.startswith("[[") and s.endswith("]]"):  # an attribute line between comment and function
            k -= 1
        else:
            break
    block.reverse()  # top to bottom
    for i, s in enumerate(block):
        if MARKER in s:
            # The reason runs from the marker to the end of the comment block.
            parts = [s.split(MARKER, 1)[1]] + block[i + 1 :]
            words = [re.sub(r"^(//+|/\*+|\*+/?)", "", p).rstrip("*/").strip() for p in parts]
            reason = " ".join(w for w in words if w)
            return reason or None
    return None


def matching_brace(code: str, i: int) -> int:
    """Offset of the "}" closing the "{" at offset i (len(code) if it is never closed)."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


def functions_in(path: str, text: str) -> list[Function]:
    code = strip_code(text)
    lines = text.split("\n")
    line_of = [0] * (len(code) + 1)
    ln = 1
    for k, c in enumerate(code):
        line_of[k] = ln
        if c == "\n":
            ln += 1
    line_of[len(code)] = ln

    found: list[Function] = []
    # Stack of open blocks: True for a function body (everything inside it belongs to it).
    stack: list[bool] = []
    header_start = 0  # offset where the current declaration's text begins
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c in ";}":
            if c == "}" and stack:
                stack.pop()
            header_start = i + 1
        elif c == "{":
            if any(stack):
                stack.append(True)
                header_start = i + 1
                i += 1
                continue
            header = code[header_start:i]
            name = function_name(header)
            if name and re.search(r"\)\s*:(?!:)", header) and re.search(r"[\w>]\s*$", header):
                # A brace initializer in a constructor's member-initializer list ("x_{a}"): skip it
                # and keep reading the constructor's declaration.
                j = matching_brace(code, i)
                i = j + 1
                continue
            if name:
                j = matching_brace(code, i)
                lead = len(header) - len(header.lstrip())
                start = line_of[header_start + lead]
                found.append(Function(path, name, start, line_of[i], line_of[min(j, n)], reason_above(lines, start)))
                stack.append(True)
            else:
                stack.append(False)
            header_start = i + 1
        i += 1
    return found


def source_files(root: str, paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        full = os.path.join(root, p)
        if os.path.isfile(full):
            out.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(EXTENSIONS):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="repository root (default: this script's parent folder)")
    ap.add_argument("--limit", type=int, default=80, help="longest body allowed without a reason (lines)")
    ap.add_argument("--list", action="store_true", help="also list the long functions that have a reason")
    ap.add_argument("--skip", action="append", default=[], metavar="FILE:FUNCTION",
                    help="do not fail on this function (repeatable; for a split in progress elsewhere)")
    ap.add_argument("paths", nargs="*", help="files or folders to scan (default: src cli include python)")
    args = ap.parse_args(argv)
    root = os.path.normpath(args.root)
    paths = args.paths or [d for d in DEFAULT_DIRS if os.path.isdir(os.path.join(root, d))]
    skip = set()
    for item in args.skip:
        file, sep, function = item.rpartition(":")
        if not sep or not file or not function:
            print(f"check_function_length: --skip wants FILE:FUNCTION, got '{item}'", file=sys.stderr)
            return 2
        skip.add((os.path.normpath(file), function))
    files = source_files(root, paths)
    if not files:
        print("check_function_length: no C++ files found under " + ", ".join(paths), file=sys.stderr)
        return 2
    failures = 0
    justified = 0
    skipped = []
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for f in functions_in(rel, text):
            if f.length <= args.limit:
                continue
            if (os.path.normpath(f.path), f.name) in skip:
                skipped.append(f"{f.path}:{f.start_line}: {f.name}: {f.length} lines")
            elif f.reason:
                justified += 1
                if args.list:
                    print(f"{f.path}:{f.start_line}: {f.name}: {f.length} lines, allowed: {f.reason}")
            else:
                failures += 1
                print(f"{f.path}:{f.start_line}: {f.name}: {f.length} lines (limit {args.limit}); split it, or say "
                      f"why not in a comment directly above it: // {MARKER} ...")
    for line in skipped:
        print(f"{line} (skipped)")
    print(f"check_function_length: {len(files)} files, {failures} function(s) over {args.limit} lines without a "
          f"reason, {justified} with one, {len(skipped)} skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

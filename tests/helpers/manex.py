#!/usr/bin/env python3
"""manex.py - run the EXAMPLES of an mdoc man page (jq's man.test, for mv).

  manex.py list PAGE   print the example commands, one per line
  manex.py run PAGE    run them in order in the current directory

An example is a line "$ command" inside a .Bd -literal display of the
EXAMPLES section; the lines after it, up to the next "$ " line or .Ed, are
its expected output.  Expected lines that start with "mv-TOOL: " are
compared with what the command printed on stderr, the others with stdout,
each in order.  A command with no expected lines is only checked for exit
status 0 (run with pipefail; 141, SIGPIPE before "| head", is fine).  .Dl one-liners are illustrations (other hosts, paths) and are
not run.  Exit 0 when every example passed; otherwise each failure is
printed and the exit status is 1.
"""
import re
import subprocess
import sys

ESCAPES = [("\\e", "\\"), ("\\-", "-"), ("\\&", ""), ("\\(aq", "'"),
           ("\\(dq", '"'), ("\\(ti", "~"), ("\\(ha", "^"), ("\\(ga", "`"),
           ("\\(rs", "\\"), ("\\ ", " ")]


def unescape(line):
    out, i = [], 0
    while i < len(line):
        for esc, rep in ESCAPES:
            if line.startswith(esc, i):
                out.append(rep)
                i += len(esc)
                break
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def examples(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    in_ex = in_bd = False
    cur = None
    for raw in lines:
        if raw.startswith(".Sh "):
            in_ex = raw.strip() == ".Sh EXAMPLES"
            continue
        if not in_ex:
            continue
        if raw.startswith(".Bd") and "-literal" in raw:
            in_bd = True
            continue
        if raw.startswith(".Ed"):
            in_bd = False
            if cur:
                yield cur
                cur = None
            continue
        if not in_bd or raw.startswith(".") or raw.startswith("'"):
            continue
        text = unescape(raw)
        if text.startswith("$ "):
            if cur:
                yield cur
            cur = (text[2:], [])
        elif cur is not None:
            cur[1].append(text)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("list", "run"):
        sys.exit(__doc__)
    exs = list(examples(sys.argv[2]))
    if sys.argv[1] == "list":
        for cmd, _ in exs:
            print(cmd)
        return 0
    bad = 0
    for cmd, want in exs:
        p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=120)
        out = p.stdout.decode("utf-8", "replace").splitlines()
        err = p.stderr.decode("utf-8", "replace").splitlines()
        want_err = [l for l in want if re.match(r"^mv-[a-z]+: ", l)]
        want_out = [l for l in want if not re.match(r"^mv-[a-z]+: ", l)]
        why = []
        # 141: a writer before "| head" ended by SIGPIPE, as it may.
        if p.returncode not in (0, 141):
            why.append("exit status %d" % p.returncode)
        if want and out != want_out:
            why.append("stdout %r, the page says %r" % (out, want_out))
        if want and err != want_err:
            why.append("stderr %r, the page says %r" % (err, want_err))
        if why:
            bad = 1
            print("%s: $ %s: %s" % (sys.argv[2], cmd, "; ".join(why)))
            if not want and err:
                print("  stderr: %s" % " | ".join(err))
    return bad


if __name__ == "__main__":
    sys.exit(main())

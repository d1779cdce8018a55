"""The Python tool tests' tally: check() counts a condition and records
(and prints) it when false; summary() prints the counts and returns the
test's exit status."""

failures = []
_count = [0]


def check(cond, what):
    _count[0] += 1
    if not cond:
        failures.append(what)
        print("FAILED: " + what)


def summary():
    print("%d passed, %d failed" % (_count[0] - len(failures), len(failures)))
    return 1 if failures else 0

"""Print the seed examples' comparison table and exit nonzero on a mismatch."""
import sys


def report(head, rows):
    """``rows`` are tuples of strings whose last entry is "yes" or "NO"."""
    failed = sum(r[-1] != "yes" for r in rows)
    widths = [max(len(r[i]) for r in list(rows) + [head]) for i in range(len(head))]
    line = " | ".join
    print(line(h.ljust(w) for h, w in zip(head, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(c.ljust(w) for c, w in zip(r, widths)))
    print()
    print(f"{len(rows) - failed} of {len(rows)} match" + (f"; {failed} MISMATCH" if failed else ""))
    sys.exit(1 if failed else 0)

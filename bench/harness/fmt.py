"""How figures read in the report."""


def fmt_rate(x):
    return f"{x:,.0f}" if x == x else "n/a"


def fmt_ratio(x):
    return f"{x:.2f}" if x == x else "n/a"


def verdict(ok):
    return "met" if ok else "**missed**"


def compare(a, b, faster="faster than", slower="slower than"):
    """How rate `a` stands to rate `b`, in words; within 10% reads as a tie, as in the TCP
    section, because the rounds of this machine spread that far."""
    r = a / b
    if r != r:
        return "not comparable with"
    if r >= 1.1:
        return f"{r:.1f}x {faster}" if r >= 2 else f"{(r - 1):.0%} {faster}"
    if r <= 1 / 1.1:
        return f"{1 / r:.1f}x {slower}" if r <= 0.5 else f"{(1 - r):.0%} {slower}"
    return "within 10% of"

"""Find the first row that breaks the ledger's hash chain, and say what happened to it.

Every row is written as row ``last + 1`` and its hash covers its seq and the previous
row's hash. Walking rows in seq order, a row is fine when its hash matches at its seq,
it links to the row before it and its seq follows on. Otherwise:

- edited: its hash matches at no seq it could have been written as;
- deleted: a seq is missing (or, when later rows were renumbered to close the gap,
  a row links to an entry that is no longer in the ledger);
- inserted: a row was slipped in, so the next original row links past it;
- reordered: a row sits before the entry it links to.
"""

from __future__ import annotations

from tasks.ledger.entry import GENESIS, LedgerEntry


def chain_problem(entries: list[LedgerEntry]) -> tuple[int, str] | None:
    """(seq, problem) of the first row that breaks the chain, or None. ``entries`` in seq order."""
    by_hash = {e.entry_hash: e for e in entries}
    last_possible = (entries[-1].seq + len(entries)) if entries else 0
    prev: LedgerEntry | None = None
    for i, e in enumerate(entries):
        expected_seq, expected_link = (prev.seq + 1, prev.entry_hash) if prev else (1, GENESIS)
        following = entries[i + 1] if i + 1 < len(entries) else None
        written = _written_seq(e, last_possible)
        if written is None:
            if following is not None and following.prev_hash == expected_link:
                return e.seq, (f"row {e.seq} was inserted: it is not part of the chain (row {following.seq} links "
                               f"straight to row {expected_seq - 1})")
            return e.seq, f"row {e.seq} was edited: its content does not match its hash"
        if e.seq != expected_seq and written == e.seq:
            gone = f"row {expected_seq}" + (f" to row {e.seq - 1}" if e.seq - 1 > expected_seq else "")
            return expected_seq, f"{gone} deleted: the ledger goes from row {expected_seq - 1} to row {e.seq}"
        if e.prev_hash == expected_link and written == e.seq:
            prev = e
            continue
        if e.prev_hash == expected_link:
            return e.seq, f"row {e.seq} was renumbered: it was written as row {written}"
        linked = by_hash.get(e.prev_hash)
        linked_seq = 0 if e.prev_hash == GENESIS else (linked.seq if linked else None)
        if linked_seq is None:
            return e.seq, (f"row {written - 1} (as written) was deleted and the rows after it renumbered: row {e.seq} "
                           f"was written as row {written} and links to an entry that is no longer in the ledger")
        if linked_seq > e.seq:
            return e.seq, (f"rows reordered: row {e.seq} holds the entry written as row {written}, which comes after "
                           f"row {linked_seq} in the chain")
        inserted = next(x for x in entries if x.seq > linked_seq)
        return inserted.seq, (f"row {inserted.seq} was inserted: row {e.seq} (written as row {written}) links to row "
                              f"{linked_seq}, so the rows between are not part of the chain")
    return None


def _written_seq(e: LedgerEntry, last_possible: int) -> int | None:
    """The seq ``e`` had when it was written: the one its hash matches at, or None (its content changed)."""
    if e.content_hash() == e.entry_hash:
        return e.seq
    return next((s for s in range(1, last_possible + 1) if e.content_hash(seq=s) == e.entry_hash), None)

"""The strict YAML loader's text-keyed store of checked results (KeptByText); the loader itself is tested through
the contracts and policies that use it (test_contract_loading.py, tests/tasks/test_policy.py)."""

from __future__ import annotations

from data_contracts.strict_yaml import KeptByText


def test_kept_by_text_keeps_the_last_few_by_their_exact_text():
    kept: KeptByText[int] = KeptByText(limit=2)
    kept.keep("a: 1\n", 1)
    kept.keep("b: 2\n", 2)
    assert kept.get("a: 1\n") == 1 and kept.get("b: 2\n") == 2
    assert kept.get("a: 1") is None and kept.get("a:  1\n") is None  # another text, however close, is not it
    kept.keep("c: 3\n", 3)  # over the limit: the oldest goes
    assert kept.get("a: 1\n") is None and kept.get("b: 2\n") == 2 and kept.get("c: 3\n") == 3
    kept.keep("c: 3\n", 30)  # the same text again: replaced, nothing evicted
    assert kept.get("b: 2\n") == 2 and kept.get("c: 3\n") == 30

"""edit_distance and error_rate against known cases, a brute-force recursion and a rate worked by hand; errors."""
import random
import re
from functools import cache

import pytest

from rnr.metrics import edit_distance, error_rate


def lit(text: str) -> str:
    return re.escape(text)


def levenshtein_recursive(a: str, b: str) -> int:
    """The definition, recursed on the first items: no table, no trimming (exponential without the cache)."""
    @cache
    def d(i: int, j: int) -> int:
        if i == len(a) or j == len(b):
            return (len(a) - i) + (len(b) - j)
        return min(d(i + 1, j) + 1, d(i, j + 1) + 1, d(i + 1, j + 1) + (a[i] != b[j]))
    return d(0, 0)


@pytest.mark.parametrize("reference, hypothesis, expected", [
    ("kitten", "sitting", 3),
    ("", "abc", 3),
    ("abc", "", 3),
    ("", "", 0),
    ("abc", "abc", 0),
    ("flaw", "lawn", 2),
    ("abcd", "acbd", 2),         # a swap is two substitutions (no transpositions)
    ("aaa", "a", 2),
    (["the", "cat", "sat"], ["the", "cat", "sat", "down"], 1),
    (["the", "cat", "sat"], ["a", "cat", "sat"], 1),
    (["the", "cat", "sat"], ["cat"], 2),
    ([1, 2, 3, 4], (1, 3, 4, 5), 2),
    (["kitten"], ["sitting"], 1),  # tokens compare whole: one substitution, not three
])
def test_known_distances(reference, hypothesis, expected):
    assert edit_distance(reference, hypothesis) == expected
    assert edit_distance(hypothesis, reference) == expected
    assert isinstance(edit_distance(reference, hypothesis), int)


def test_equals_the_recursive_definition_on_random_short_strings():
    rng = random.Random(0)
    for _ in range(400):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        expected = levenshtein_recursive(a, b)
        assert edit_distance(a, b) == expected, (a, b)
        assert edit_distance(b, a) == expected, (a, b)
        assert edit_distance(list(a), list(b)) == expected


def test_error_rate_by_hand():
    # words: "the cat sat" -> "the bat sat down" is 1 substitution + 1 insertion; "hello world" -> "hello" 1 deletion
    refs = [["the", "cat", "sat"], ["hello", "world"]]
    hyps = [["the", "bat", "sat", "down"], ["hello"]]
    assert error_rate(refs, hyps) == pytest.approx((2 + 1) / (3 + 2))
    # characters, and an empty reference that contributes its insertions but no length
    assert error_rate(["kitten", "abc", ""], ["sitting", "abc", "xy"]) == pytest.approx((3 + 0 + 2) / (6 + 3 + 0))
    assert error_rate(("abc",), ("abc",)) == 0.0
    assert error_rate(["ab"], ["ab cd ef"]) == pytest.approx(3.0)  # insertions can take the rate past 1


def test_errors_name_the_rule_and_the_fix():
    with pytest.raises(ValueError, match=lit("got 1 hypotheses for 2 references; align the two lists")):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=lit("references must hold at least one item in all, got 2 references, "
                                             "all empty")):
        error_rate(["", []], ["x", ["y"]])
    with pytest.raises(ValueError, match=lit("got 0 references, all empty")):
        error_rate([], [])
    with pytest.raises(TypeError, match=lit("references must be a list of transcripts (one str or token list per "
                                            "utterance), got str; wrap a single transcript in a list: [reference]")):
        error_rate("the cat", "the cat")
    with pytest.raises(TypeError, match=lit("hypotheses[1] must be a str (compared character by character) or a "
                                            "list of tokens")):
        error_rate(["a", "b"], ["a", None])
    with pytest.raises(TypeError, match=lit("reference must be a str (compared character by character) or a list "
                                            "of tokens (e.g. text.split() for words), got int")):
        edit_distance(3, "abc")
    with pytest.raises(TypeError, match=lit("hypothesis must be a str")):
        edit_distance("abc", None)

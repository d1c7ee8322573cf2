from __future__ import annotations

import pytest

from stages.llm.matching import match_output, match_rows

IDS = [10, 11, 12, 13]


def test_exactly_one_match_is_valid_and_correct() -> None:
    r = match_output("Toy Story\nmore text naming Heat", ["Toy Story", "Heat", "Balto", "Nixon"], IDS, 10)
    assert (r.valid, r.correct, r.item_id, r.index) == (True, True, 10, 0)


def test_valid_but_wrong() -> None:
    r = match_output("  I recommend balto.", ["Toy Story", "Heat", "Balto", "Nixon"], IDS, 10)
    assert (r.valid, r.correct, r.item_id) == (True, False, 12)


def test_two_candidates_named_is_invalid() -> None:
    r = match_output("Heat or Nixon", ["Toy Story", "Heat", "Balto", "Nixon"], IDS, 11)
    assert (r.valid, r.correct, r.item_id, r.index) == (False, False, None, None)


def test_no_candidate_named_is_invalid() -> None:
    assert not match_output("something else", ["Toy Story", "Heat"], IDS[:2], 10).valid


def test_nested_titles_paper_rule_is_invalid_longest_rule_resolves() -> None:
    titles, ids = ["Alien", "Aliens", "Heat"], [1, 2, 3]
    assert not match_output("Aliens", titles, ids, 2).valid  # "aliens" contains "alien": two matches
    r = match_output("Aliens", titles, ids, 2, rule="longest")
    assert (r.valid, r.correct, r.item_id) == (True, True, 2)
    # "alien" alone is unambiguous under both rules
    assert match_output("Alien", titles, ids, 1).correct
    assert match_output("Alien", titles, ids, 1, rule="longest").correct


def test_duplicate_titles_are_ambiguous_under_both_rules() -> None:
    titles, ids = ["Heat", "Heat", "Balto"], [1, 2, 3]
    assert not match_output("Heat", titles, ids, 1).valid
    assert not match_output("Heat", titles, ids, 1, rule="longest").valid


def test_empty_title_never_matches() -> None:
    titles, ids = ["", "Heat", "  "], [1, 2, 3]
    r = match_output("Heat", titles, ids, 2)
    assert (r.valid, r.correct, r.item_id) == (True, True, 2)
    assert not match_output("anything", titles, ids, 1).valid


def test_html_entities_are_unescaped_on_both_sides() -> None:
    titles, ids = ["Am&eacute;lie", "Tom &amp; Jerry", "Heat"], [1, 2, 3]
    assert match_output("Amélie", titles, ids, 1).correct
    assert match_output("tom & jerry", titles, ids, 2).correct
    assert match_output("Tom &amp;amp; Jerry", ["Tom & Jerry"], [2], 2).correct  # double-escaped output


def test_only_first_line_counts_and_case_is_ignored() -> None:
    titles = ["Toy Story", "Heat"]
    assert not match_output("nothing\nToy Story", titles, [1, 2], 1).valid
    assert match_output(
        "\n  TOY STORY\nheat", titles, [1, 2], 1
    ).correct  # stripped first, as the public code


def test_match_rows_and_errors() -> None:
    out = match_rows(["Heat", "x"], [["Heat", "Balto"]] * 2, [[1, 2]] * 2, [1, 2])
    assert [(m.valid, m.correct) for m in out] == [(True, True), (False, False)]
    with pytest.raises(ValueError):
        match_output("Heat", ["Heat"], [1, 2], 1)
    with pytest.raises(ValueError):
        match_output("Heat", ["Heat"], [1], 1, rule="fuzzy")  # type: ignore[arg-type]

"""Title modes: clean (years, articles, nesting, HTML, duplicates, empties) and llara (quirks)."""

from __future__ import annotations

from stages.preprocess.titles import clean_title, llara_movie_title, make_titles


def test_clean_articles_years_nested():
    assert clean_title("Shawshank Redemption, The (1994)", strip_year=True) == (
        "The Shawshank Redemption",
        "1994",
    )
    assert clean_title("Nutty Professor, An (1963)", strip_year=True)[0] == "An Nutty Professor"
    assert clean_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)", strip_year=True)[
        0
    ] == ("The City of Lost Children (La Cité des enfants perdus)")
    assert clean_title("Postman, The (Postino, Il) (1994)", strip_year=True)[0] == "The Postman (Il Postino)"
    assert clean_title("Appartement, L' (1996)", strip_year=True)[0] == "L'Appartement"
    assert clean_title("Boot, Das (1981)", strip_year=True)[0] == "Das Boot"
    assert clean_title("Tom &amp; Jerry", strip_year=False)[0] == "Tom & Jerry"
    assert clean_title("A Bug's Life (1998)", strip_year=True)[0] == "A Bug's Life"
    assert clean_title("1999 (1998)", strip_year=False)[0] == "1999 (1998)"  # non-movie: year kept


def test_llara_quirks():
    assert llara_movie_title("Godfather, The (1972)") == "The Godfather"
    assert llara_movie_title("Nutty Professor, An (1963)") == "A Nutty Professorn"
    assert llara_movie_title("unknown") == ""
    assert llara_movie_title("Stand, The, A (1990)") == "The Stand, A"  # first listed article wins


def test_make_titles_never_empty_and_unique():
    raw = [
        "Chasing Amy (1997)",
        "Chasing Amy (1997)",
        "Hamlet (1990)",
        "Hamlet (1996)",
        "",
        "&lt;b&gt; (2000)",
    ]
    ids = ["246", "268", "1", "2", "99", "7"]
    out = make_titles(raw, ids, mode="clean", domain="movie")
    assert out == [
        "Chasing Amy (1997)",
        "Chasing Amy (1997) [268]",
        "Hamlet (1990)",
        "Hamlet (1996)",
        "99",
        "<b>",
    ]
    assert len(set(out)) == len(out)
    assert make_titles([" Cher "], ["5"], mode="llara", domain="artist") == ["Cher"]

import pytest

from tasks.drift import plotly_paths

PATHS = ["xaxis2.title.text", "error_x.color", "annotations[0].font.size", "paper_bgcolor", "legend_title_text",
         "a_path_", "_another_path", "yet__another_path", "layout.xaxis.range[1]", ""]


@pytest.fixture
def original(monkeypatch):
    """plotly's own parser, with this process's memoisation undone for the test and redone after it."""
    from plotly import basedatatypes

    parse = getattr(basedatatypes, plotly_paths.PARSER)
    parse = getattr(parse, "__wrapped__", parse) if getattr(parse, "lockgate_memoised", False) else parse
    monkeypatch.setattr(basedatatypes, plotly_paths.PARSER, parse)
    plotly_paths.memoise_plotly_paths.cache_clear()
    yield parse
    plotly_paths.memoise_plotly_paths.cache_clear()


def test_memoised_paths_parse_as_plotlys_own_and_each_caller_gets_its_own_list(original):
    from plotly import basedatatypes

    expected = {p: original(p) for p in PATHS}
    assert plotly_paths.memoise_plotly_paths() is True
    memoised = getattr(basedatatypes, plotly_paths.PARSER)
    assert memoised is not original and memoised.__wrapped__ is original
    for _ in range(2):  # the second time from the cache
        assert {p: memoised(p) for p in PATHS} == expected
    first = memoised("xaxis2.title.text")[1]
    first.append(99)
    assert memoised("xaxis2.title.text")[1] == expected["xaxis2.title.text"][1]
    assert plotly_paths.memoise_plotly_paths() is True and getattr(basedatatypes, plotly_paths.PARSER) is memoised
    with pytest.raises(Exception) as theirs:
        original(["xaxis"])
    with pytest.raises(type(theirs.value)):  # not a string: plotly's own error, nothing cached
        memoised(["xaxis"])


def test_evidentlys_figures_are_the_same_with_memoised_paths(original):
    from plotly import basedatatypes
    from plotly.subplots import make_subplots

    def figure():
        fig = make_subplots(rows=2, cols=2, subplot_titles=["a", "b", "c", "d"], shared_xaxes=True)
        fig.add_bar(x=[1, 2], y=[3, 4], row=2, col=2, error_y={"type": "data", "array": [0.1, 0.2]})
        fig.update_layout(paper_bgcolor="white", legend_title_text="columns", xaxis2_title_text="score")
        fig.update_xaxes(showgrid=False, row=1, col=2)
        return fig.to_plotly_json()

    before = figure()
    assert plotly_paths.memoise_plotly_paths() is True
    assert getattr(basedatatypes, plotly_paths.PARSER) is not original
    assert figure() == before


def test_a_plotly_without_the_parser_is_left_alone(original, monkeypatch):
    from plotly import basedatatypes

    monkeypatch.delattr(basedatatypes, plotly_paths.PARSER)
    assert plotly_paths.memoise_plotly_paths() is False
    assert not hasattr(basedatatypes, plotly_paths.PARSER)

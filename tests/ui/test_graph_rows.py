"""The graph panel's rows (ui/graph_rows.py) without an app: which rows exist, how long
chains fold, open and reveal, and graphs at the step limit walked without recursion."""

from __future__ import annotations

import sys

import pytest

from backprop_tui.ui.graph_rows import (
    CHAIN_HEAD, CHAIN_MIN, CHAIN_PAGE, CHAIN_TAIL, Gap, autograd_outline, chain_below, graph_outline,
)

LAYERS = 250
# deep_chain below J: h250, then a250, h249, a249, ..., h1, a1 (499 links at one level under h250)
LINKS = [name for k in range(LAYERS, 0, -1) for name in (f"a{k}", f"h{k - 1}")][:-1]


def session_of(preset):
    from backprop_tui.engine import Session, load_preset, resolve_preset

    return Session(load_preset(resolve_preset(str(preset))))


@pytest.fixture(scope="module")
def deep_chain():
    return session_of("deep_chain").snapshot


def described(rows) -> list[str]:
    """Each row as `guides + what it is`: a node's name, `↪ name`, or `… N`."""
    out = []
    for row in rows:
        item = row.item
        if isinstance(item, Gap):
            out.append(f"{row.guides}… {item.hidden}")
        elif item.kind == "ref":
            out.append(f"{row.guides}↪ {item.name}")
        else:
            out.append(f"{row.guides}{item.name}")
    return out


def shown_links(rows) -> list[str]:
    names = {row.item.name for row in rows if not isinstance(row.item, Gap)}
    return [name for name in LINKS if name in names]


def test_the_chain_below_h250_is_every_layer_down_to_a1(deep_chain):
    assert chain_below("h250", deep_chain) == ["h250"] + LINKS
    assert chain_below("J", deep_chain) == []  # the output feeds nothing: not a link
    assert chain_below("w", deep_chain) == []  # a leaf used by every layer


def test_a_long_chain_is_laid_out_at_one_level_with_its_middle_folded(deep_chain):
    outline = graph_outline(deep_chain)
    assert described(outline.rows()) == [
        "J",
        "├ h250",
        "│ ├ a250", "│ │ ├ w", "│ │ └ b",
        "│ ├ h249",
        "│ ├ a249", "│ │ ├ ↪ w", "│ │ └ ↪ b",
        f"│ ├ … {len(LINKS) - CHAIN_HEAD - CHAIN_TAIL}",
        "│ ├ a2", "│ │ ├ ↪ w", "│ │ └ ↪ b",
        "│ ├ h1",
        "│ └ a1", "│   ├ ↪ w", "│   ├ x", "│   └ ↪ b",
        "└ y",
    ]
    assert described(outline.rows(guide_width=1))[:3] == ["J", "├h250", "│├a250"]


def test_opening_the_fold_shows_the_next_page_in_place(deep_chain):
    outline = graph_outline(deep_chain)
    (gap,) = [row.item for row in outline.rows() if isinstance(row.item, Gap)]
    assert (gap.first.name, gap.last.name, gap.hidden) == ("h248", "h2", 493)
    first = outline.open_gap(gap)
    assert first.name == "h248"
    rows = outline.rows()
    assert shown_links(rows) == LINKS[:3 + CHAIN_PAGE] + LINKS[-3:]
    (gap,) = [row.item for row in rows if isinstance(row.item, Gap)]
    assert gap.hidden == 493 - CHAIN_PAGE
    while (gaps := [row.item for row in outline.rows() if isinstance(row.item, Gap)]):
        outline.open_gap(gaps[0])
    # J, h250, its 499 links, w and b under each of the 250 a's (in full once, then as
    # references), x under a1, y
    assert len(outline.rows()) == 1 + 1 + len(LINKS) + 2 * LAYERS + 1 + 1 == 1003


def test_reveal_opens_a_window_around_the_node_and_joins_windows_that_touch(deep_chain):
    outline = graph_outline(deep_chain)
    outline.reveal(outline.full["a100"])
    i = LINKS.index("a100")
    rows = outline.rows()
    assert shown_links(rows)[3:-3] == LINKS[i - 2:i + 3]
    above, below = [row.item for row in rows if isinstance(row.item, Gap)]
    assert (above.hidden, below.hidden) == (i - 2 - 3, len(LINKS) - 3 - (i + 3))
    outline.reveal(outline.full["h97"])  # just below the window: its own window joins it
    assert shown_links(outline.rows())[3:-3] == LINKS[i - 2:i + 8]


def test_a_folded_entry_hides_what_is_below_it_and_reveal_unfolds_it(deep_chain):
    outline = graph_outline(deep_chain)
    h250 = outline.full["h250"]
    h250.expanded = False
    assert described(outline.rows()) == ["J", "├ h250", "└ y"]
    outline.reveal(outline.full["x"])
    assert h250.expanded and "│   ├ x" in described(outline.rows())


def test_nodes_the_output_does_not_use_come_last_under_a_heading():
    from backprop_tui.engine import Session
    from backprop_tui.engine.preset import parse_preset

    preset = parse_preset(
        'name = "t"\ntitle = "t"\noutput = "J"\n'
        '[tensors.x]\nrole = "parameter"\nvalue = 2.0\n'
        '[[steps]]\nname = "J"\nexpr = "x * 3"\n'
        '[[steps]]\nname = "side"\nexpr = "x + 1"\n', "t.toml")
    rows = graph_outline(Session(preset).snapshot).rows()
    assert described(rows)[:2] == ["J", "└ x"]
    assert rows[2].item.kind == "group" and described(rows)[3:] == ["└ side", "  └ ↪ x"]


def write_chain(path, steps: int):
    lines = ['name = "long_chain"', 'title = "long chain"', f'output = "s{steps}"',
             '[tensors.x]', 'role = "parameter"', 'value = 1.0',
             '[[steps]]', 'name = "s1"', 'expr = "x * 1.0001"']
    for k in range(2, steps + 1):
        lines += ['[[steps]]', f'name = "s{k}"', f'expr = "s{k - 1} * 0.9999 + x"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_diamond(path, layers: int):
    """c_k = p_k + q_k with p_k and q_k both made from c_(k-1): every layer a diamond."""
    lines = ['name = "diamond"', 'title = "diamond"', f'output = "c{layers}"',
             '[tensors.c0]', 'role = "parameter"', 'value = 1.0']
    for k in range(1, layers + 1):
        lines += ['[[steps]]', f'name = "p{k}"', f'expr = "c{k - 1} * 0.5"',
                  '[[steps]]', f'name = "q{k}"', f'expr = "c{k - 1} * 0.5"',
                  '[[steps]]', f'name = "c{k}"', f'expr = "p{k} + q{k}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def limit_graphs(tmp_path_factory):
    from backprop_tui.engine import limits

    folder = tmp_path_factory.mktemp("limits")
    chain = session_of(write_chain(folder / "chain.toml", limits.MAX_STEPS)).snapshot
    diamond = session_of(write_diamond(folder / "diamond.toml", limits.MAX_STEPS // 3)).snapshot
    assert len(chain.nodes) == limits.MAX_STEPS + 1 and len(diamond.nodes) == 3 * (limits.MAX_STEPS // 3) + 1
    return chain, diamond


def test_graphs_at_the_step_limit_are_laid_out_shallow_in_both_views(limit_graphs, monkeypatch):
    """2,000 steps in a chain and 666 diamonds: no recursion (a low recursion limit), and
    no row deeper than a few levels, in the graph and in the grad_fn view."""
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)  # restored after
    sys.setrecursionlimit(200)
    try:
        outlines = [build(snapshot) for snapshot in limit_graphs for build in (graph_outline, autograd_outline)]
    finally:
        sys.setrecursionlimit(1000)
    for outline in outlines:
        rows = outline.rows()
        assert max(row.depth for row in rows) <= 4
        assert len(rows) < 40  # the chain is folded
        gaps = [row.item for row in rows if isinstance(row.item, Gap)]
        assert len(gaps) == 1 and gaps[0].hidden > 1000
        while (gaps := [row.item for row in outline.rows() if isinstance(row.item, Gap)]):
            outline.open_gap(gaps[0], gaps[0].lo, gaps[0].hi)  # all of it at once
        rows = outline.rows()
        assert max(row.depth for row in rows) <= 4 and len(rows) > 2000


def test_the_diamond_graph_shows_each_node_in_full_once(limit_graphs):
    _, diamond = limit_graphs
    outline = graph_outline(diamond)
    assert set(outline.full) == {node.name for node in diamond.nodes}
    rows = outline.rows()
    chain = outline.full["c666"].chain
    assert chain is not None and len(chain.members) >= CHAIN_MIN
    assert [m.name for m in chain.members[:4]] == ["p666", "c665", "p665", "c664"]
    # q_k is shown in full beside its link, its input c_(k-1) as a reference
    q = outline.full["q666"]
    assert q.parent is outline.full["c666"] and [c.kind for c in q.children] == ["ref"]
    assert described(rows)[0] == "c666"


def test_the_autograd_view_of_a_short_graph_nests_as_pytorch_holds_it():
    snapshot = session_of("linear_regression").snapshot
    rows = autograd_outline(snapshot).rows()
    names = [row.item.data[0].name if row.item.kind == "fn" else row.item.kind for row in rows]
    assert names[0] == "fn-root" and names[1] == "DivBackward0"
    assert [row.depth for row in rows[:6]] == [0, 1, 2, 3, 4, 5]  # nested as next_functions
    grads = sorted(row.item.data[0].node for row in rows if names[rows.index(row)] == "AccumulateGrad")
    assert grads == ["b", "w"]  # x does not require grad: no AccumulateGrad for it

"""Draw `snakemake --rulegraph` output (DOT) as an SVG without Graphviz: a layered top-down layout in
matplotlib (the DOT subset Snakemake writes: `N[label = "rule", ...]` nodes and `a -> b` edges).

    snakemake --rulegraph --configfile config/demo.yaml > docs/rulegraph.dot
    python tools/render_rulegraph.py docs/rulegraph.dot docs/rulegraph.svg

With Graphviz installed, `dot -Tsvg docs/rulegraph.dot > docs/rulegraph.svg` gives the same graph.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)"')
EDGE = re.compile(r"^\s*(\d+) -> (\d+)")


def parse(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    nodes, edges = {}, []
    for line in dot.splitlines():
        if m := NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif (m := EDGE.match(line)) and m.group(1) != m.group(2):
            # a rule feeding itself (stage n on stage n-1) is drawn once
            edges.append((m.group(1), m.group(2)))
    return nodes, edges


def layers(nodes: dict[str, str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a source: inputs on top, `all` at the bottom."""
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    depth: dict[str, int] = {}

    def visit(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            depth[node] = 1 + max((visit(p, seen | {node}) for p in parents[node] if p not in seen), default=-1)
        return depth[node]

    for node in nodes:
        visit(node)
    return depth


def order(depth: dict[str, int], edges: list[tuple[str, str]], nodes: dict[str, str]) -> dict[int, list[str]]:
    """Nodes per layer, sorted by the mean position of their neighbours (a few sweeps)."""
    rows: dict[int, list[str]] = {}
    for node in sorted(nodes, key=lambda n: nodes[n]):
        rows.setdefault(depth[node], []).append(node)
    neighbours: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for _ in range(8):
        position = {n: i / max(len(row) - 1, 1) for row in rows.values() for i, n in enumerate(row)}
        for level in sorted(rows):
            rows[level].sort(
                key=lambda n: sum(position[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours[n] else 0.5
            )
    return rows


def render(dot_path: str, svg_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes, edges = parse(Path(dot_path).read_text())
    depth = layers(nodes, edges)
    rows = order(depth, edges, nodes)
    width = max(len(row) for row in rows.values())
    box_w, box_h, step = 1.7, 0.38, 1.95  # data units: one layer is 1 high
    xy = {}
    for level, row in rows.items():
        for i, node in enumerate(row):
            xy[node] = ((i - (len(row) - 1) / 2) * step, -level)
    fig, ax = plt.subplots(figsize=(1.25 * step * width, 0.75 * len(rows)))
    for a, b in edges:
        (x0, y0), (x1, y1) = xy[a], xy[b]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 - box_h / 2),
                (x1, y1 + box_h / 2),
                arrowstyle="-|>",
                mutation_scale=9,
                color="#888888",
                linewidth=0.8,
                shrinkA=0,
                shrinkB=0,
            )
        )
    for node, (x, y) in xy.items():
        label = nodes[node]
        colour = "#fde0c5" if label.startswith("prepare_") else "#d9e8f5" if label in ("all", "manifest") else "#dff0d8"
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=colour,
                edgecolor="#444444",
                linewidth=0.8,
            )
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=8, family="sans-serif")
    ax.set_xlim(-step * width / 2, step * width / 2)
    ax.set_ylim(-max(rows) - 0.5, 0.5)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(
        svg_path,
        format=Path(svg_path).suffix[1:] or "svg",
        metadata={"Date": None} if svg_path.endswith(".svg") else None,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dot", help="the rule graph (`snakemake --rulegraph` output)")
    parser.add_argument("svg", help="the drawing to write (its suffix picks the format)")
    args = parser.parse_args(argv)
    render(args.dot, args.svg)


if __name__ == "__main__":
    main()

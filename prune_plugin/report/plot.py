"""Per-layer sparsity bar chart (matplotlib, Agg backend: no display needed)."""
import os

KIND_COLORS = {'conv1x1': '#1f77b4', 'conv kxk': '#ff7f0e', 'depthwise': '#2ca02c',
               'linear': '#d62728', 'other': '#7f7f7f'}


def plot_sparsity(rows, path, title, reference=None):
    """Write a PNG bar chart: one bar per row, coloured by kind.

    Args:
        rows: Parameter rows (the ones listed in the report).
        path: Output file (``.png``).
        title: Chart title.
        reference: Optional sparsity drawn as a dashed line (e.g. the prunable total).

    Returns:
        ``path``.

    Raises:
        OSError: the file cannot be written.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    width = min(max(6.0, 0.18 * len(rows) + 3.5), 40.0)
    fig, ax = plt.subplots(figsize=(width, 4.8))
    try:
        positions = range(len(rows))
        ax.bar(positions, [r['sparsity'] * 100 for r in rows],
               color=[KIND_COLORS.get(r['kind'], '#7f7f7f') for r in rows])
        if len(rows) <= 80:
            ax.set_xticks(list(positions))
            ax.set_xticklabels([r['name'] for r in rows], rotation=90, fontsize=6)
        else:
            ax.set_xlabel(f"{len(rows)} parameters, in report order")
        if reference is not None:
            ax.axhline(reference * 100, linestyle='--', color='black', linewidth=1,
                       label=f"prunable total {reference * 100:.1f}%")
        handles = [Patch(color=KIND_COLORS.get(kind, '#7f7f7f'), label=kind)
                   for kind in sorted({r['kind'] for r in rows})]
        ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, fontsize=7,
                  loc='upper left', bbox_to_anchor=(1.0, 1.0))
        ax.set_ylim(0, 100)
        ax.set_ylabel('sparsity (%)')
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path

"""What planners see of a result: its tables, plots (PNG, needs matplotlib: the `plot` extra)
and a self-contained HTML report.

    from optimizers.report import plot, html_report
    plot(result.to_dict(), instance, "network.png")
    html_report(result.to_dict(), instance, "report.html")
"""

from optimizers.report.html import html_report
from optimizers.report.plots import figure, plot
from optimizers.report.tables import Table, fmt, tables

__all__ = ["Table", "figure", "fmt", "html_report", "plot", "tables"]

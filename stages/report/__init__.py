"""Stage ``report``: results side by side with the published LLaRA numbers, as Parquet, Markdown and PNG.

The published figures are the project's own copy ``published_results.csv`` (see ``published``).
"""

from stages.report.report import NAME, ReportConfig, build_table, render_markdown, run

__all__ = ["NAME", "ReportConfig", "build_table", "render_markdown", "run"]
